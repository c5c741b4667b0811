"""What the project's commands share to refuse bad input before they start anything: the
user-facing error type, argparse value types (from the config fields the flags set), the help
formatter, and the model-file check.

Nothing here imports torch, rclpy or pybullet, so a command's parser builds, and its checks
fail, in well under a second.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qtopt_policy.config_fields import Bounds, numeric_field, parse_value

if TYPE_CHECKING:
    from qtopt_policy.model_file import ModelFileInfo


class UsageError(ValueError):
    """Input a command cannot work with (a bad value, path or file, or a mismatch between
    them); the command line prints it as one ``qtopt: error: ...`` line and exits with 2.
    Its message names the input and says what was expected."""


@dataclass(frozen=True)
class ValueType:
    """An argparse type: a flag's text as an int or float within bounds, else argparse's
    error, which the commands print as ``--flag VALUE: expected an integer >= 1``."""

    kind: type
    bounds: Bounds | None = None
    # the config field the flag sets ("module:Class", field), where it sets one
    field: tuple[str, str] | None = None

    def __call__(self, text: str) -> int | float:
        try:
            return parse_value(text, self.kind, self.bounds)
        except ValueError as err:  # argparse prefixes the flag
            raise argparse.ArgumentTypeError(f"{text}: {err}") from None


def config_field_type(config: str, name: str) -> ValueType:
    """The argparse type of a flag that sets the numeric field ``name`` of the config dataclass
    ``config`` (``"module:Class"``): the field's type and bounds, read from the class's source
    so the parser imports no torch; the config checks the same bounds once built."""
    kind, bounds = numeric_field(config, name)
    return ValueType(kind, bounds, (config, name))


positive_int = ValueType(int, Bounds(low=1))  # counts that fill no config field


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
