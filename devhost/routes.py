"""HTTP-trigger route templates, matched the way the Functions host (ASP.NET routing) matches them.

A template such as ``items/{id:int:min(1)}/{part?}`` compiles to one regular expression over the path
below ``/api``. Supported: ``{name}``, inline constraints (the ASP.NET type constraints ``int``, ``long``,
``bool``, ``alpha``, ``guid``, ``decimal``, ``double``, ``float``, ``datetime`` and the bounded ones
``min``, ``max``, ``range``, ``minlength``, ``maxlength``, ``length``), optional ``{id?}``, defaults
``{id=1}``, catch-all ``{*rest}``, several parameters in one segment (``{name}.{version}``). Literal
segments match case-insensitively. Anything else (``regex(...)``, unknown constraints) is refused when
the template is parsed, so a route the local host cannot serve fails at start, not at request time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

_PARAMETER = re.compile(r"\{([^{}]*)\}")
_CONSTRAINT = re.compile(r"(?P<name>\w+)(?:\((?P<args>[^()]*)\))?")
_INTEGER = re.compile(r"-?\d+")


def _is_int(value: str) -> bool:
    return _INTEGER.fullmatch(value) is not None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_TYPE_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _is_int,
    "long": _is_int,
    "bool": lambda value: value.lower() in ("true", "false"),
    "alpha": lambda value: value.isascii() and value.isalpha(),
    "guid": _is_guid,
    "decimal": _is_number,
    "double": _is_number,
    "float": _is_number,
    "datetime": _is_datetime,
}
_BOUNDED_CONSTRAINTS: dict[str, Callable[..., bool]] = {
    "min": lambda value, low: _is_int(value) and int(value) >= low,
    "max": lambda value, high: _is_int(value) and int(value) <= high,
    "range": lambda value, low, high: _is_int(value) and low <= int(value) <= high,
    "minlength": lambda value, low: len(value) >= low,
    "maxlength": lambda value, high: len(value) <= high,
    "length": lambda value, low, high=None: low <= len(value) <= (low if high is None else high),
}


@dataclass(frozen=True)
class _Parameter:
    name: str
    group: str
    checks: tuple[Callable[[str], bool], ...]
    default: str | None


@dataclass(frozen=True)
class RouteTemplate:
    """An HTTP trigger's route template compiled for matching request paths below ``/api``."""

    template: str
    pattern: re.Pattern[str]
    parameters: tuple[_Parameter, ...]
    # ASP.NET inbound precedence per segment: literal 1, mixed 2, constrained 3, parameter 4, catch-all 5.
    precedence: tuple[int, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        segments = [segment for segment in template.strip("/").split("/") if segment]
        regex: list[str] = []
        parameters: list[_Parameter] = []
        precedence: list[int] = []
        for index, segment in enumerate(segments):
            is_last = index == len(segments) - 1
            part, rank = _compile_segment(template, segment, parameters, is_last=is_last)
            regex.append(part)
            precedence.append(rank)
        pattern = re.compile("".join(regex), re.IGNORECASE)  # literals match case-insensitively, as in ASP.NET
        return cls(template, pattern, tuple(parameters), tuple(precedence))

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters when ``path`` (like ``/items/5``) fits the template, else None."""
        found = self.pattern.fullmatch(path.rstrip("/"))
        if found is None:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found[parameter.group]
            if not value:  # an optional or catch-all segment that is absent
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not all(check(value) for check in parameter.checks):
                return None
            values[parameter.name] = value
        return values


def _compile_segment(template: str, segment: str, parameters: list[_Parameter], *, is_last: bool) -> tuple[str, int]:
    pieces = _PARAMETER.split(segment)  # literal, parameter, literal, ...
    if len(pieces) == 1:
        if "{" in segment or "}" in segment:
            raise ValueError(f"route {template!r}: unbalanced braces in segment {segment!r}")
        return "/" + re.escape(segment), 1
    if len(pieces) == 3 and pieces[0] == pieces[2] == "":
        return _compile_parameter_segment(template, pieces[1], parameters, is_last=is_last)
    regex = "/"
    for position, piece in enumerate(pieces):
        if position % 2 == 0:
            regex += re.escape(piece)
            continue
        parameter, optional, catch_all = _parse_parameter(template, piece, f"p{len(parameters)}")
        if optional or catch_all:
            raise ValueError(f"route {template!r}: optional or catch-all parameters need a segment of their own")
        parameters.append(parameter)
        regex += f"(?P<{parameter.group}>[^/]+?)"
    return regex, 2


def _compile_parameter_segment(
    template: str, body: str, parameters: list[_Parameter], *, is_last: bool
) -> tuple[str, int]:
    parameter, optional, catch_all = _parse_parameter(template, body, f"p{len(parameters)}")
    parameters.append(parameter)
    group = parameter.group
    if catch_all or optional:
        if not is_last:
            raise ValueError(f"route {template!r}: {{{body}}} may only be the last segment")
        return (f"(?:/(?P<{group}>.*))?", 5) if catch_all else (f"(?:/(?P<{group}>[^/]+))?", 4)
    return f"/(?P<{group}>[^/]+)", 3 if parameter.checks else 4


def _parse_parameter(template: str, body: str, group: str) -> tuple[_Parameter, bool, bool]:
    """``name[:constraint...][?|=default]`` or ``*name``; returns the parameter, optional, catch-all."""
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default = None
    if "=" in body:
        body, default = body.split("=", 1)
    optional = body.endswith("?") or default is not None
    name, *constraints = body.rstrip("?").split(":")
    if not name:
        raise ValueError(f"route {template!r}: a parameter has no name")
    checks = tuple(_constraint_check(template, constraint) for constraint in constraints)
    return _Parameter(name, group, checks, default), optional, catch_all


def _constraint_check(template: str, constraint: str) -> Callable[[str], bool]:
    found = _CONSTRAINT.fullmatch(constraint)
    name = found["name"].lower() if found else constraint
    if found and found["args"] is None and name in _TYPE_CONSTRAINTS:
        return _TYPE_CONSTRAINTS[name]
    if found and found["args"] is not None and name in _BOUNDED_CONSTRAINTS:
        try:
            bounds = [int(arg) for arg in found["args"].split(",")]
            check = _BOUNDED_CONSTRAINTS[name]
            check("0", *bounds)  # wrong arity fails here, not at request time
        except (ValueError, TypeError) as exc:
            raise ValueError(f"route {template!r}: bad arguments in constraint {constraint!r}") from exc
        return lambda value: check(value, *bounds)
    raise ValueError(f"route {template!r}: route constraint {constraint!r} is not supported by the local host")
