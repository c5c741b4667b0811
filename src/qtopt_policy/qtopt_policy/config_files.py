"""A config dataclass as a command line and a YAML file, through draccus (the config library
LeRobot uses): one option per field, ``--section.field`` for a nested config, the field
comments as help; ``--config FILE`` starts from a saved config, options given beside it win.

A run keeps its config with :func:`save_config`, and ``--config`` loads that file as it is, so
a run folder's ``config.yaml`` reproduces the run. Errors become :class:`UsageError`, one line
naming the option or key and what was expected, before the command starts anything.

draccus reads every value as YAML; two things here keep a value what the user typed: a text
field's value is passed as a string (``--run_dir 0123`` stays ``"0123"``, not YAML 1.1's octal
83), and a list field given one bare item holds that item (``--offline_data bags/``, or
``offline_data: bags/`` in a file, would otherwise be split into characters).
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
    args = _typed_values(config_type, [_option_spelling(arg) for arg in args])
    config_path = _config_path(args)
    given = _config_file_data(config_type, config_path) if config_path is not None else {}
    options = _without_config(args)
    config = _parse(config_type, given, options, prog, description, config_path)
    if base is not None:  # the base, the given file over it, the options over both
        layers = mergedeep.merge(draccus.encode(base(config)), given)
        config = _parse(config_type, layers, options, prog, description, config_path)
    return config


def save_config(config: Any, path: Path) -> None:
    """Write ``config`` as YAML (every field, defaults included) that :func:`load_config`
    and ``--config`` read back equal."""
    path.write_text(draccus.dump(config))


def load_config(config_type: type[T], path: Path) -> T:
    """The config :func:`save_config` wrote at ``path`` (or any YAML file of its fields);
    UsageError naming the file and the key where the file is not such a config."""
    data = _config_file_data(config_type, str(path))
    try:
        config = draccus.decode(config_type, data)
    except DecodingError as err:
        key = ".".join(err.key_path) or "top level"
        raise UsageError(f"{path}: {key}: {' '.join(err.message.split())}") from None
    except ParsingError as err:
        raise UsageError(f"{path}: {_invalid_message(err, config_type, '')}") from None
    _check_no_none(config, f"{path}: ")
    return config


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


def _parse(config_type: type[T], data: dict[str, Any], options: list[str], prog: str,
           description: str, config_path: str | None) -> T:
    """draccus's parse of ``options`` over the config fields ``data``."""
    parser = ArgumentParser(config_type, prog=prog, description=description,
                            exit_on_error=False)
    with tempfile.TemporaryDirectory() as folder:
        layers = Path(folder) / "config.yaml"
        layers.write_text(yaml.safe_dump(data))
        try:
            config = parser.parse_args(["--config_path", str(layers), *options])
        except argparse.ArgumentError as err:
            raise UsageError(f"{err.argument_name} {err.message}") from None
        except DecodingError as err:
            raise UsageError(_decoding_message(err, config_path)) from None
        except ParsingError as err:
            raise UsageError(_invalid_message(err, config_type, config_path)) from None
        except DraccusException as err:  # draccus's own argparse errors: unrecognized arguments
            raise UsageError(str(err)) from None
        except yaml.YAMLError as err:  # an option's value, which draccus reads as YAML
            raise UsageError(f"an option's value is not valid YAML: {_first_line(err)}; "
                             "expected a value, or a list as [a, b]") from None
        except OSError as err:  # draccus reads a value "include FILE" as that file
            raise UsageError(f"{err.filename}: {err.strerror}; an option's value that "
                             "starts with 'include' names a file for draccus") from None
    _check_no_none(config, "--")
    return config


def _option_spelling(arg: str) -> str:
    """``--config`` as draccus's ``--config_path``; ``--bin-objects`` as ``--bin_objects``."""
    if not arg.startswith("--") or arg == "--":
        return arg
    name, eq, value = arg[2:].partition("=")
    name = "config_path" if name == CONFIG_OPTION[2:] else name.replace("-", "_")
    return f"--{name}{eq}{value}"


def _typed_values(config_type: type, args: list[str]) -> list[str]:
    """Each option's value as draccus should read it for its field (see the module's
    docstring): text quoted, one bare list item as a list."""
    args = list(args)
    for i, arg in enumerate(args):
        if not arg.startswith("--") or arg.startswith("--config_path"):
            continue
        name, eq, value = arg.partition("=")
        if eq:
            args[i] = f"{name}={_typed_value(_field_type(config_type, name[2:]), value)}"
        elif i + 1 < len(args):
            args[i + 1] = _typed_value(_field_type(config_type, name[2:]), args[i + 1])
    return args


def _typed_value(hint: Any, value: str) -> str:
    if hint is str:
        return json.dumps(value)  # a JSON string is a YAML string
    if typing.get_origin(hint) in (tuple, list) and not value.lstrip().startswith("["):
        text = str in typing.get_args(hint)
        return f"[{json.dumps(value) if text else value}]"
    return value


def _field_type(config_type: Any, dotted: str) -> Any:
    """The type of the field ``dotted`` (``ablation.reward``) of ``config_type``, or None."""
    for name in dotted.split("."):
        if not dataclasses.is_dataclass(config_type):
            return None
        config_type = typing.get_type_hints(config_type).get(name)
    return config_type


def _one_item_lists(config_type: Any, data: Any) -> Any:
    """``data`` (a config file's mapping) with a bare item of a list field as a list."""
    if not (isinstance(data, dict) and dataclasses.is_dataclass(config_type)):
        return data
    hints = typing.get_type_hints(config_type)
    out = {}
    for key, value in data.items():
        hint = hints.get(key)
        if typing.get_origin(hint) in (tuple, list) and isinstance(value, str):
            value = [value]
        out[key] = _one_item_lists(hint, value)
    return out


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


def _config_file_data(config_type: type, path: str) -> dict[str, Any]:
    """The mapping of config fields a YAML file holds; UsageError for anything else."""
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
        found = "nothing" if loaded is None else f"a {type(loaded).__name__}"
        raise UsageError(f"{CONFIG_OPTION} {path}: expected a mapping of config fields, "
                         f"found {found}")
    return _one_item_lists(config_type, loaded)


def _check_no_none(config: Any, prefix: str, section: str = "") -> None:
    """YAML's ``null`` (or an empty value) where a field takes no None: draccus passes it."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        if value is None and type(None) not in typing.get_args(hint):
            raise UsageError(f"{prefix}{section}{field.name}: empty (null); expected a value")
        if dataclasses.is_dataclass(value):
            _check_no_none(value, prefix, f"{section}{field.name}.")


def _first_line(err: Exception) -> str:
    return " ".join(str(err).split("\n")[0].split())


def _decoding_message(err: DecodingError, config_path: str | None) -> str:
    message = " ".join(err.message.split())  # draccus's messages may span lines
    if err.key_path and not message.startswith("The fields"):
        return f"--{'.'.join(err.key_path)}: {message}"
    # keys of the file that are no fields, at the top level or in a section
    section = ".".join(err.key_path)
    return f"{CONFIG_OPTION} {config_path}: {section + ': ' if section else ''}{message}"


def _invalid_message(err: ParsingError, config_type: type, config_path: str | None) -> str:
    """The config's own check (``__post_init__``'s ValueError, ``field value: expected ...``),
    with the option that sets the field."""
    cause = err.__cause__
    if cause is None:
        return f"{CONFIG_OPTION} {config_path}: {' '.join(str(err).split())}"
    failed = re.search(r"class (\S+) using", str(err))
    sections = _sections_of(config_type, failed.group(1)) if failed else [""]
    if len(sections) <= 1:
        return f"--{(sections or [''])[0]}{cause}"
    # a config class nested in several places: the error cannot tell which one
    return f"{' or '.join('--' + s.rstrip('.') for s in sections)}: {cause}"


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
