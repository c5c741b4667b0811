"""A config dataclass as a command line and a YAML file, through draccus (the config library
LeRobot uses): one option per field, ``--section.field`` for a nested config, the field
comments as help; ``--config FILE`` starts from a saved config, options given beside it win.

A run keeps its config with :func:`save_config`, and ``--config`` loads that file as it is, so
a run folder's ``config.yaml`` reproduces the run. Errors become :class:`UsageError`, one line
naming the option or key and what was expected, before the command starts anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tempfile
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import draccus
import mergedeep
import yaml
from draccus.argparsing import ArgumentParser
from draccus.utils import DecodingError, DraccusException, ParsingError

from qtopt_policy.usage import UsageError

T = TypeVar("T")
CONFIG_OPTION = "--config"  # draccus spells it --config_path; both are taken


def parse_config(config_type: type[T], args: Sequence[str], prog: str,
                 description: str = "", base: Callable[[T], T] | None = None) -> T:
    """``config_type`` from the command line ``args``: ``--field value`` (``--field-name``
    as well as draccus's ``--field_name``), ``--section.field value``, lists as ``[a, b]``,
    and ``--config FILE``. ``--help`` prints the options with their comments and exits.

    ``base``, given the config the arguments make, returns the config they are laid over
    instead of the class defaults: a preset that sets other fields' defaults (the options and
    the file still win, field by field)."""
    args = _one_item_lists(config_type, [_option_spelling(arg) for arg in args])
    config_path = _config_path(args)
    if config_path is not None:
        _check_config_file(config_path)
    config = _parse(config_type, args, prog, description, config_path)
    if base is None:
        return config
    # the base, then the given file over it, as one file under the given options
    layers = draccus.encode(base(config))
    if config_path is not None:
        mergedeep.merge(layers, yaml.safe_load(Path(config_path).read_text()))
    with tempfile.TemporaryDirectory() as folder:
        merged = Path(folder) / "config.yaml"
        merged.write_text(yaml.safe_dump(layers))
        return _parse(config_type, ["--config_path", str(merged), *_without_config(args)],
                      prog, description, config_path)


def _parse(config_type: type[T], args: list[str], prog: str, description: str,
           config_path: str | None) -> T:
    parser = ArgumentParser(config_type, prog=prog, description=description,
                            exit_on_error=False)
    try:
        return parser.parse_args(args)
    except argparse.ArgumentError as err:
        raise UsageError(f"{err.argument_name} {err.message}") from None
    except DecodingError as err:
        raise UsageError(_decoding_message(err, "--" + ".".join(err.key_path),
                                           config_path)) from None
    except ParsingError as err:
        raise UsageError(_invalid_message(err, config_type, config_path)) from None
    except DraccusException as err:  # draccus's own argparse errors: unrecognized arguments
        raise UsageError(str(err)) from None


def save_config(config: Any, path: Path) -> None:
    """Write ``config`` as YAML (every field, defaults included) that :func:`load_config`
    and ``--config`` read back equal."""
    path.write_text(draccus.dump(config))


def load_config(config_type: type[T], path: Path) -> T:
    """The config :func:`save_config` wrote at ``path``; UsageError naming the file and the
    key where the file is not such a config."""
    _check_config_file(str(path))
    try:
        return draccus.load(config_type, path)
    except DecodingError as err:
        key = ".".join(err.key_path) or "top level"
        raise UsageError(f"{path}: {key}: {err.message}") from None
    except ParsingError as err:
        raise UsageError(_invalid_message(err, config_type, str(path))) from None


def read_config_data(path: Path) -> Any:
    """What a saved config file holds as plain data (a mapping, if it is a config), for
    comparing configs field by field: YAML, or JSON where the name ends in ``.json`` (PyYAML
    would read JSON's ``7e-05`` as a string). ValueError where the text is neither."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(" ".join(str(err).split())) from None


def _option_spelling(arg: str) -> str:
    """``--config`` as draccus's ``--config_path``; ``--bin-objects`` as ``--bin_objects``."""
    if not arg.startswith("--") or arg == "--":
        return arg
    name, eq, value = arg[2:].partition("=")
    name = "config_path" if name == CONFIG_OPTION[2:] else name.replace("-", "_")
    return f"--{name}{eq}{value}"


def _one_item_lists(config_type: type, args: list[str]) -> list[str]:
    """A list field's value given as one item (``--offline_data bags/``) as the YAML list
    ``[bags/]``: draccus would split the text into characters."""
    args = list(args)
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if eq and name.startswith("--") and _is_list(config_type, name[2:]):
            args[i] = f"{name}={_as_list(value)}"
        elif (not eq and arg.startswith("--") and i + 1 < len(args)
              and _is_list(config_type, arg[2:])):
            args[i + 1] = _as_list(args[i + 1])
    return args


def _is_list(config_type: type, dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    hint = typing.get_type_hints(config_type).get(head) if dataclasses.is_dataclass(
        config_type) else None
    if rest:
        return hint is not None and _is_list(hint, rest)
    return typing.get_origin(hint) in (tuple, list)


def _as_list(value: str) -> str:
    return value if value.lstrip().startswith("[") else f"[{value}]"


def _config_path(args: Sequence[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg == "--config_path" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config_path="):
            return arg.partition("=")[2]
    return None


def _without_config(args: list[str]) -> list[str]:
    """``args`` less ``--config_path FILE``."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--config_path":
            skip = True
        elif not arg.startswith("--config_path="):
            out.append(arg)
    return out


def _check_config_file(path: str) -> None:
    if not Path(path).is_file():
        raise UsageError(f"{CONFIG_OPTION} {path}: no such file (expected a YAML config, "
                         "e.g. a run folder's config.yaml)")
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UsageError(f"{CONFIG_OPTION} {path}: not valid YAML{line}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{CONFIG_OPTION} {path}: expected a mapping of config fields, "
                         f"found {type(loaded).__name__}")


def _decoding_message(err: DecodingError, option: str, config_path: str | None) -> str:
    message = " ".join(err.message.split())  # draccus's messages may span lines
    if not err.key_path:  # a key of the file that is no field
        return f"{CONFIG_OPTION} {config_path}: {message}"
    return f"{option}: {message}"


def _invalid_message(err: ParsingError, config_type: type, config_path: str | None) -> str:
    """The config's own check (``__post_init__``'s ValueError, ``field value: expected ...``),
    with the option that sets the field."""
    cause = err.__cause__
    if cause is None or isinstance(cause, yaml.YAMLError):
        return f"{CONFIG_OPTION} {config_path}: {' '.join(str(err).split())}"
    failed = re.search(r"class (\S+) using", str(err))
    sections = _sections_of(config_type, failed.group(1)) if failed else [""]
    if len(sections) <= 1:
        return f"--{(sections or [''])[0]}{cause}"
    return f"{' or '.join(s.rstrip('.') for s in sections)}: {cause}"  # which one, unknown


def _sections_of(config_type: type, class_name: str, prefix: str = "") -> list[str]:
    """The option prefixes of every config of class ``class_name`` nested in ``config_type``
    (``["ablation."]``; ``""`` for ``config_type`` itself)."""
    if config_type.__name__ == class_name:
        return [prefix]
    found = []
    for name, hint in typing.get_type_hints(config_type).items():
        if dataclasses.is_dataclass(hint):
            found += _sections_of(hint, class_name, f"{prefix}{name}.")
    return found
