"""What a config dataclass says about its fields beyond type and default, for the tools that
present configs (ROS parameter descriptors, launch arguments, the command line): a description
and, where a field has a natural numeric range, its bounds.

Descriptions are the field's comments in the class source (the comment lines right above it,
then the one after it), so the configs stay plain dataclasses commented like the rest of the
project. Bounds are given once, with :func:`bounded`, and the config enforces them by calling
:func:`check_bounds` first thing in ``__post_init__`` (so a cross-field check never reports a
value that is itself out of bounds). :func:`numeric_field` reads a field's type and bounds from
the class, or from its source where importing the class's module would cost a command line
torch.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
import inspect
import io
import math
import numbers
import textwrap
import tokenize
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_BOUNDS = "bounds"  # the key in dataclasses.Field.metadata
_NUMBER_TYPES: dict[Any, type] = {int: int, float: float, "int": int, "float": float}


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
    return dataclasses.field(default=default, metadata={_BOUNDS: _bounds(ge, gt, le, lt)})


def _bounds(ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None) -> Bounds:
    if (ge is not None and gt is not None) or (le is not None and lt is not None):
        raise TypeError("bounded: give at most one of ge/gt and one of le/lt")
    return Bounds(low=gt if ge is None else ge, high=lt if le is None else le,
                  low_open=gt is not None, high_open=lt is not None)


def field_bounds(field: dataclasses.Field) -> Bounds | None:
    return field.metadata.get(_BOUNDS)


def describe_values(kind: type, bounds: Bounds | None) -> str:
    """What a field of type ``kind`` (int or float) within ``bounds`` takes, for messages:
    ``"an integer >= 1"``, ``"a number in [0, 1)"``."""
    noun = "an integer" if kind is int else "a number"
    return noun if bounds is None or bounds == Bounds() else f"{noun} {bounds.describe()}"


def parse_value(text: str, kind: type, bounds: Bounds | None) -> int | float:
    """``text`` (a command-line or launch argument) as a value of a field of type ``kind``
    within ``bounds``; ValueError ``"expected an integer >= 1"`` otherwise."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (bounds is not None and value not in bounds):
        raise ValueError(f"expected {describe_values(kind, bounds)}")
    return value


def numeric_field(config: type | str, name: str) -> tuple[type, Bounds | None]:
    """The type (int or float) and bounds of the numeric field ``name`` of the config dataclass
    ``config``: the class, or ``"module:Class"`` to read them from the class's source without
    importing its module (a parser that must not import torch); a bound there is a number or
    a name imported from a light module (``le=MAX_BIN_OBJECTS``)."""
    if isinstance(config, str):
        return _declared_field(config, name)
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    kind = _NUMBER_TYPES.get(field.type)  # a name where annotations are postponed
    if kind is None:
        raise TypeError(f"{config.__name__}.{name}: not an int or float field")
    return kind, field_bounds(field)


def _declared_field(config: str, name: str) -> tuple[type, Bounds | None]:
    module, _, class_name = config.partition(":")
    tree = _module_tree(module)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name),
               None)
    stmt = cls and next((s for s in cls.body if isinstance(s, ast.AnnAssign)
                         and isinstance(s.target, ast.Name) and s.target.id == name), None)
    if stmt is None:
        raise AttributeError(f"{config}.{name}: no such field in the module's source")
    kind = _NUMBER_TYPES.get(ast.unparse(stmt.annotation))
    if kind is None:
        raise TypeError(f"{config}.{name}: not an int or float field")
    value = stmt.value
    if not (isinstance(value, ast.Call) and getattr(value.func, "id", "") == "bounded"):
        return kind, None
    return kind, _bounds(**{k.arg: _number(k.value, tree, f"{config}.{name}")
                            for k in value.keywords})


@functools.cache
def _module_tree(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return ast.parse(Path(spec.origin).read_text())


def _number(node: ast.expr, tree: ast.Module, where: str) -> float:
    """A bound in a module's source: a literal, or a name the module imports."""
    if isinstance(node, ast.Name):
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module:
                for alias in stmt.names:
                    if (alias.asname or alias.name) == node.id:
                        return getattr(importlib.import_module(stmt.module), alias.name)
        raise TypeError(f"{where}: bound {node.id} is not imported by its module")
    return ast.literal_eval(node)


def check_bounds(config: Any) -> None:
    """Raise ValueError naming the first field of ``config`` outside its bounds, or not a
    number (an integer where the field is an ``int``)."""
    for field in dataclasses.fields(config):
        bounds = field_bounds(field)
        if bounds is None:
            continue
        value = getattr(config, field.name)
        kind = int if field.type in (int, "int") else float
        # bool is an int to Python, never to a config; 2.0 passes as an int, 2.5 does not
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number or (kind is int and not (math.isfinite(value) and value == int(value))):
            raise ValueError(f"{field.name} {value!r}: expected {describe_values(kind, bounds)}")
        if value not in bounds:
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

