"""What a config dataclass says about its fields beyond type and default, for the tools that
present configs (ROS parameter descriptors, later the command line): a description and, where a
field has a natural numeric range, its bounds.

Descriptions are the field's comments in the class source (the comment lines right above it,
then the one after it), so the configs stay plain dataclasses commented like the rest of the
project. Bounds are given once, with :func:`bounded`, and the config enforces them by calling
:func:`check_bounds` in ``__post_init__``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
from typing import Any, TypeVar

T = TypeVar("T")
_BOUNDS = "bounds"  # the key in dataclasses.Field.metadata


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Numeric limits of a field; ``None`` leaves a side open, ``*_open`` excludes the limit."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        # written so that NaN is outside any bounds
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return bool(above and below)

    def describe(self) -> str:
        """``">= 1"``, ``"> 0"``, ``"in [0, 1)"``..."""
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "any value"


def bounded(default: T, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None) -> T:
    """A field default with bounds: ``steps: int = bounded(20, ge=1, le=1000)``."""
    if (ge is not None and gt is not None) or (le is not None and lt is not None):
        raise TypeError("bounded: give at most one of ge/gt and one of le/lt")
    bounds = Bounds(low=gt if ge is None else ge, high=lt if le is None else le,
                    low_open=gt is not None, high_open=lt is not None)
    return dataclasses.field(default=default, metadata={_BOUNDS: bounds})


def field_bounds(field: dataclasses.Field) -> Bounds | None:
    return field.metadata.get(_BOUNDS)


def check_bounds(config: Any) -> None:
    """Raise ValueError naming the first field of ``config`` outside its bounds."""
    for field in dataclasses.fields(config):
        bounds = field_bounds(field)
        value = getattr(config, field.name)
        if bounds is not None and value not in bounds:
            raise ValueError(f"{field.name} {value!r}: expected {bounds.describe()}")


def field_description(config_type: type, field: dataclasses.Field) -> str:
    """The field's comments, or its class, name and type where it has none."""
    text = field_comments(config_type).get(field.name)
    if text:
        return text
    type_name = field.type.__name__ if isinstance(field.type, type) else str(field.type)
    return f"{config_type.__name__}.{field.name} ({type_name})"


@functools.cache
def field_comments(config_type: type) -> dict[str, str]:
    """``{field name: comment text}`` for the fields of ``config_type`` that have comments; a
    subclass's comment wins over its base's."""
    comments: dict[str, str] = {}
    for cls in reversed(config_type.__mro__):
        if "__annotations__" in vars(cls) and cls is not object:
            comments.update(_class_comments(cls))
    return comments


def _class_comments(cls: type) -> dict[str, str]:
    """The comments of the fields ``cls`` itself defines, read from its source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (built at run time, or a frozen module)
        return {}
    comment_at = {tok.start[0]: tok.string.lstrip("#").strip()
                  for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                  if tok.type == tokenize.COMMENT}
    lines = source.splitlines()
    class_def = ast.parse(source).body[0]
    assert isinstance(class_def, ast.ClassDef)
    comments: dict[str, str] = {}
    for stmt in class_def.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above: list[str] = []
        line = stmt.lineno - 1  # a block of whole-line comments directly above the field
        while line in comment_at and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comment_at[line])
            line -= 1
        after = [comment_at[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1)
                 if n in comment_at]
        # a block's lines run on; the block and a comment after it are separate remarks
        block, tail = " ".join(p for p in above if p), " ".join(p for p in after if p)
        if block and tail and not block.endswith("."):
            block += ";"
        text = " ".join(part for part in (block, tail) if part)
        if text:
            comments[stmt.target.id] = text
    return comments

