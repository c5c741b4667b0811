"""config_files: a config dataclass as a command line and a YAML file (draccus), a saved file
read back equal, ``--config`` overridden by options beside it, bad input as one UsageError."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.config_files import load_config, parse_config, save_config
from qtopt_policy.usage import UsageError


@dataclass(frozen=True)
class _Inner:
    mode: str = "a"  # a or b

    def __post_init__(self) -> None:
        if self.mode not in ("a", "b"):
            raise ValueError(f"mode {self.mode!r}: expected one of a, b")


@dataclass(frozen=True)
class _Job:
    name: str = ""  # what the job is called
    count: int = bounded(1, ge=1)  # how many
    share: float = 0.5  # a fraction
    paths: tuple[str, ...] = ()  # files, as a list
    inner: _Inner = field(default_factory=_Inner)  # a nested config

    def __post_init__(self) -> None:
        check_bounds(self)


def _parse(*args: str) -> _Job:
    return parse_config(_Job, list(args), prog="job")


def test_options_set_fields_in_either_spelling_and_nested_by_section():
    assert _parse() == _Job()
    job = _parse("--count", "3", "--inner.mode", "b", "--paths", "[x, y/z]", "--share=0.25")
    assert job == _Job(count=3, share=0.25, paths=("x", "y/z"), inner=_Inner("b"))
    assert _parse("--count=4").count == 4
    # one item is a one-item list, not its characters; a hyphen spells an underscore
    assert _parse("--paths", "bags/").paths == ("bags/",)
    assert _parse("--paths=bags/").paths == ("bags/",)


def test_values_stay_what_was_typed():
    """draccus reads values as YAML 1.1: text fields keep their text, a list field's one bare
    item is one item."""
    assert _parse("--name", "0123").name == "0123"  # not octal 83
    assert _parse("--name=1_000").name == "1_000"
    assert _parse("--name", "a: b").name == "a: b"
    assert _parse("--name", "true").name == "true"
    assert _parse("--paths", "x,y").paths == ("x,y",)


def test_a_file_s_bare_list_item_is_one_item(tmp_path):
    (tmp_path / "f.yaml").write_text("paths: bags/\n")
    assert _parse("--config", str(tmp_path / "f.yaml")).paths == ("bags/",)
    assert load_config(_Job, tmp_path / "f.yaml").paths == ("bags/",)


def test_a_saved_config_loads_equal_and_is_a_valid_config_option(tmp_path):
    job = _Job(name="r1", count=7, share=0.125, paths=("a", "b"), inner=_Inner("b"))
    save_config(job, tmp_path / "config.yaml")
    assert load_config(_Job, tmp_path / "config.yaml") == job
    assert _parse("--config", str(tmp_path / "config.yaml")) == job
    # options given beside the file win, field by field
    assert _parse("--config", str(tmp_path / "config.yaml"), "--count", "2",
                  "--inner.mode", "a") == _Job(name="r1", count=2, share=0.125,
                                               paths=("a", "b"))
    # a file may hold only some fields: the rest keep their defaults
    (tmp_path / "part.yaml").write_text("count: 5\ninner:\n  mode: b\n")
    assert _parse("--config_path", str(tmp_path / "part.yaml")) == _Job(count=5,
                                                                       inner=_Inner("b"))


def test_a_base_config_sets_the_defaults_that_the_file_and_options_override(tmp_path):
    """``base``: a preset field that chooses other fields' defaults (qtopt train's preset)."""
    counts = {"": 1, "big": 100}

    def base(given: _Job) -> _Job:
        return _Job(name=given.name, count=counts[given.name], share=0.75)

    assert parse_config(_Job, ["--name", "big"], "job", base=base) == _Job("big", 100, 0.75)
    assert parse_config(_Job, ["--name", "big", "--count", "3"], "job",
                        base=base) == _Job("big", 3, 0.75)
    (tmp_path / "f.yaml").write_text("name: big\nshare: 0.5\n")
    assert parse_config(_Job, ["--config", str(tmp_path / "f.yaml")], "job",
                        base=base) == _Job("big", 100, 0.5)
    assert parse_config(_Job, ["--config", str(tmp_path / "f.yaml"), "--share", "0.25"], "job",
                        base=base) == _Job("big", 100, 0.25)


@pytest.mark.parametrize(("args", "files", "expected"), [
    (["--count", "0"], {}, "--count 0: expected >= 1"),
    (["--count", "x"], {}, "--count: Couldn't parse 'x' into an int"),
    (["--count"], {}, "--count expected one argument"),
    (["--inner.mode", "c"], {}, "--inner.mode 'c': expected one of a, b"),
    (["--nope", "1"], {}, "unrecognized arguments: --nope 1"),
    (["--config", "missing.yaml"], {}, "--config missing.yaml: no such file"),
    (["--config", "f.yaml"], {"f.yaml": "count: [1\n"}, "--config f.yaml: not valid YAML at line"),
    (["--config", "f.yaml"], {"f.yaml": "- 1\n"},
     "--config f.yaml: expected a mapping of config fields, found a list"),
    (["--config", "f.yaml"], {"f.yaml": ""},
     "--config f.yaml: expected a mapping of config fields, found nothing"),
    (["--paths", "[a, b"], {}, "an option's value is not valid YAML"),
    (["--inner.mode", "include_x"], {}, "starts with 'include' names a file"),
    (["--share", "null"], {}, "--share: empty (null); expected a value"),
    (["--config", "f.yaml"], {"f.yaml": "inner:\n  mood: b\n"},
     "--config f.yaml: inner: The fields `mood` are not valid"),
    (["--config", "f.yaml"], {"f.yaml": "cont: 1\n"},
     "--config f.yaml: The fields `cont` are not valid for _Job"),
    (["--config", "f.yaml"], {"f.yaml": "count: 0\n"}, "--count 0: expected >= 1"),
])
def test_bad_input_is_one_usage_error_line(tmp_path, monkeypatch, args, files, expected):
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UsageError) as err:
        _parse(*args)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_loading_a_file_that_is_no_such_config_names_the_file_and_key(tmp_path):
    (tmp_path / "c.yaml").write_text("inner:\n  mood: b\n")
    with pytest.raises(UsageError, match=r"c.yaml: inner: The fields `mood` are not valid"):
        load_config(_Job, tmp_path / "c.yaml")


def test_help_shows_every_option_with_its_comment(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse("--help")
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, comment in (("--count int", "how many"), ("--inner.mode str", "a or b"),
                            ("--paths", "files, as a list"), ("--config_path", "config")):
        assert option in text and comment in text, option
