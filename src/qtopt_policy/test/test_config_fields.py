"""config_fields: descriptions read from the field comments, bounds given once and enforced."""

import dataclasses
import math
from dataclasses import dataclass, field

import pytest

from qtopt_policy.config_fields import (
    Bounds,
    bounded,
    check_bounds,
    field_bounds,
    field_comments,
    field_description,
    numeric_field,
    parse_value,
)
from qtopt_policy.names import MAX_BIN_OBJECTS


@dataclass(frozen=True)
class _Commented:
    """The class docstring is no field's description."""

    plain: int = 1
    trailing: int = 2  # after the field
    # A block above
    # runs on.
    block: float = 0.5
    # a block above, then
    both: str = "x"  # one after
    multi_line: tuple[int, ...] = field(
        default=(1, 2))  # on the statement's last line
    # a blank line cuts a block off from the field

    detached: bool = True


@dataclass(frozen=True)
class _Sub(_Commented):
    trailing: int = 3  # the subclass's own


@dataclass(frozen=True)
class _Bounded:
    count: int = bounded(3, ge=1)
    share: float = bounded(0.5, ge=0, lt=1)
    free: float = 0.0

    def __post_init__(self) -> None:
        check_bounds(self)


def test_descriptions_come_from_the_comments_above_and_after_a_field():
    assert field_comments(_Commented) == {
        "trailing": "after the field",
        "block": "A block above runs on.",
        "both": "a block above, then; one after",
        "multi_line": "on the statement's last line",
    }
    assert field_comments(_Sub)["trailing"] == "the subclass's own"
    assert field_comments(_Sub)["block"] == "A block above runs on."  # inherited


def test_a_field_without_comments_is_described_by_class_name_and_type():
    fields = {f.name: f for f in dataclasses.fields(_Commented)}
    assert field_description(_Commented, fields["plain"]) == "_Commented.plain (int)"
    assert field_description(_Commented, fields["detached"]) == "_Commented.detached (bool)"
    built = dataclasses.make_dataclass("Built", [("x", int, 0)])  # no source to read
    assert field_description(built, dataclasses.fields(built)[0]) == "Built.x (int)"


def test_bounds_are_field_metadata_and_checked_by_the_config():
    count, share, free = dataclasses.fields(_Bounded)
    assert field_bounds(count) == Bounds(low=1) and field_bounds(free) is None
    assert field_bounds(share) == Bounds(low=0, high=1, high_open=True)
    assert _Bounded(count=1, share=0.0) == _Bounded(1, 0.0)
    with pytest.raises(ValueError, match=r"count 0: expected >= 1"):
        _Bounded(count=0)
    with pytest.raises(ValueError, match=r"share 1.0: expected in \[0, 1\)"):
        _Bounded(share=1.0)
    with pytest.raises(ValueError, match="share nan"):
        _Bounded(share=math.nan)
    with pytest.raises(TypeError, match="ge/gt"):
        bounded(1, ge=0, gt=0)


@pytest.mark.parametrize("bounds, text", [
    (Bounds(low=0), ">= 0"), (Bounds(low=0, low_open=True), "> 0"), (Bounds(high=2), "<= 2"),
    (Bounds(low=1, high=10), "in [1, 10]"), (Bounds(low=0, high=180, low_open=True,
                                                    high_open=True), "in (0, 180)"),
])
def test_bounds_describe_themselves(bounds, text):
    assert bounds.describe() == text


def test_a_fields_type_and_bounds_are_read_from_the_class_or_its_source():
    """The source reading (for parsers that must not import the config's module) agrees with
    the class, an imported name as a bound included."""
    for name, expected in (("count", (int, Bounds(low=1))),
                           ("share", (float, Bounds(low=0, high=1, high_open=True))),
                           ("free", (float, None))):
        assert numeric_field(_Bounded, name) == expected
        assert numeric_field(f"{__name__}:_Bounded", name) == expected
    main_job = "qtopt_learner.app.main_job_config:MainJobConfig"
    assert numeric_field(main_job, "bin_objects") == (int, Bounds(low=1, high=MAX_BIN_OBJECTS))
    with pytest.raises(TypeError, match="not an int or float field"):
        numeric_field(f"{__name__}:_Commented", "both")


def test_a_value_is_parsed_as_its_field_takes_it():
    assert parse_value("3", int, Bounds(low=1)) == 3
    assert parse_value("0.25", float, Bounds(low=0, high=1, high_open=True)) == 0.25
    for text, kind, bounds, expected in (
            ("0", int, Bounds(low=1), "expected an integer >= 1"),
            ("1.5", int, Bounds(low=1), "expected an integer >= 1"),
            ("two", int, None, "expected an integer"),
            ("1", float, Bounds(low=0, high=1, high_open=True), r"a number in \[0, 1\)"),
            ("nan", float, Bounds(low=0), "expected a number >= 0")):
        with pytest.raises(ValueError, match=expected):
            parse_value(text, kind, bounds)
