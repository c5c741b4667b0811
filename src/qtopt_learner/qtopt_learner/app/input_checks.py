"""Checks of the learner's commands that look at the disk: the bags to replay and a run folder's
saved config. They raise :class:`~qtopt_policy.usage.UsageError` before anything is created."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qtopt_collector.bag_files import episode_files
from qtopt_policy.config_files import read_config_data
from qtopt_policy.usage import UsageError

BAGS = "a rosbag2 bag or a folder of bags"


def resolved(paths: Iterable[str]) -> tuple[str, ...]:
    """``paths`` as absolute paths, as configs keep them: a run resumed from another folder,
    or given a path the other way round (relative, absolute), names the same files."""
    return tuple(str(Path(p).resolve()) for p in paths)


def check_offline(paths: Iterable[str], flag: str = "--offline") -> None:
    """Every path exists and holds episode files, as log replay will look for them."""
    for path in paths:
        if not Path(path).exists():
            raise UsageError(f"{flag} {path}: no such file or folder; expected {BAGS}")
        if not episode_files([path]):
            raise UsageError(f"{flag} {path}: holds no episode files (*.mcap); expected {BAGS}")


def changed_fields(saved: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
                   ) -> list[str]:
    """``field: saved X, given Y`` for every field whose value differs between two configs
    as JSON data (nested mappings by dotted name; a field only one has shows as missing)."""
    changes = []
    for key in sorted(set(saved) | set(new), key=str):
        old, value = saved.get(key, "(missing)"), new.get(key, "(missing)")
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            changes += changed_fields(old, value, f"{prefix}{key}.")
        elif old != value:
            changes.append(f"{prefix}{key}: saved {json.dumps(old)}, given {json.dumps(value)}")
    return changes


def check_same_config(path: Path, config: Mapping[str, Any], ignore: Iterable[str] = (),
                      defaults: Mapping[str, Any] | None = None,
                      paths: Iterable[str] = (), flag: str = "--run-dir") -> None:
    """Raise UsageError when the config saved at ``path`` (a run folder's config.yaml, or the
    config.json of a folder saved before configs were YAML) differs from ``config`` in any
    field but ``ignore``: resuming the run under other settings would mix two experiments in
    one folder. A field the saved config lacks (one added since) counts as its value in
    ``defaults``; the top-level fields ``paths`` (lists of paths) compare as :func:`resolved`
    paths. ``flag``: the command's option for the run folder, as the message names it."""
    path = next((p for p in (path, path.with_suffix(".json")) if p.exists()), None)
    if path is None:
        return
    try:
        saved = read_config_data(path)
    except (OSError, ValueError) as err:
        saved = err
    if not isinstance(saved, dict):
        raise UsageError(f"{flag} {path.parent}: unreadable {path.name} ({saved}); expected "
                         "a run folder of this command or a new one")
    # tuples as lists, as the saved file holds them
    new, defaults = json.loads(json.dumps(config)), json.loads(json.dumps(defaults or {}))
    saved = {**defaults, **saved}
    for name in paths:
        for fields in (saved, new):
            if isinstance(fields.get(name), list):
                fields[name] = list(resolved(fields[name]))
    skip = set(ignore)
    changes = changed_fields({k: v for k, v in saved.items() if k not in skip},
                             {k: v for k, v in new.items() if k not in skip})
    if changes:
        raise UsageError(f"{flag} {path.parent}: saved with other settings ("
                         + "; ".join(changes) + "); expected the same options to resume it, "
                         f"or a new {flag}")
