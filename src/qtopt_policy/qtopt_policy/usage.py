"""What the project's commands share to refuse bad input before they start anything: the
user-facing error type, argparse value types, the help formatter, and the model-file check.

Nothing here imports torch, rclpy or pybullet, so a command's parser builds, and its checks
fail, in well under a second.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qtopt_policy.model_file import ModelFileInfo


class UsageError(ValueError):
    """Input a command cannot work with (a bad value, path or file, or a mismatch between
    them); the command line prints it as one ``qtopt: error: ...`` line and exits with 2.
    Its message names the input and says what was expected."""


def _number(convert: Callable[[str], float], ok: Callable[[float], bool], expected: str
            ) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            # argparse prefixes the flag: "--episodes -3: expected a positive integer"
            raise argparse.ArgumentTypeError(f"{text}: expected {expected}")
        return value

    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
probability = _number(float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")
proper_fraction = _number(float, lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's help ends with its default, except where there is none to show (required
    flags, switches, empty defaults): their help says what leaving them out does."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if action.required or default is None or isinstance(default, bool) or default in (
                "", []):
            return action.help or ""
        return super()._get_help_string(action)


def check_folder(flag: str, path: str) -> None:
    """Refuse a ``path`` that exists as something other than a folder (e.g. a file)."""
    if path and Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"{flag} {path}: not a folder; expected a folder, new or existing")


def check_model(flag: str, path: str, preset: str = "") -> ModelFileInfo:
    """The metadata of the model file ``path`` once it is a whole TorchScript export of this
    project (and, when ``preset`` is given, one of that Q-network preset)."""
    from qtopt_policy.model_file import ModelLoadError, read_model_info

    try:
        info = read_model_info(path)
    except ModelLoadError as err:
        raise UsageError(f"{flag}: {err}; expected a TorchScript model exported by qtopt "
                         "(a run folder's model.pt)") from err
    if preset and info.preset != preset:
        raise UsageError(f"{flag} {path}: a {info.preset!r} model; expected a {preset!r} "
                         f"model as --preset {preset} trains (or pass --preset {info.preset})")
    return info
