"""NCRONTAB schedules the way Azure Functions timer triggers read them.

An NCRONTAB expression has six fields, seconds first::

    {second} {minute} {hour} {day} {month} {day-of-week}

Each field is ``*``, a number, a range ``a-b``, a list ``a,b-c`` or any of those with a step
``/n``. Months and days of the week may be written as three-letter English names (``JAN``,
``MON-FRI``); days of the week run 0-6 with Sunday 0. As in NCrontab (the library the Functions
host uses), when both day and day-of-week are restricted an occurrence must match *both*.

Five-field (classic cron) and seven-field expressions are rejected, as Azure rejects them, and so
are croniter extensions NCrontab does not know (``L``, ``W``, ``#``, ``?``, ``H``). croniter
computes the occurrences (``second_at_beginning=True``, ``day_or=False``); this module validates
the syntax itself so the errors name the expression as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from croniter import CroniterBadDateError, croniter


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    _Field("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_ITEM = re.compile(r"(?:\*|(?P<start>[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?)(?:/(?P<step>[0-9]+))?")
_LAYOUT = "{second} {minute} {hour} {day} {month} {day-of-week}"


def validate(expression: str) -> None:
    """Raise ValueError naming ``expression`` unless it is a six-field NCRONTAB schedule that fires."""
    _check_syntax(expression)
    # A well-formed schedule can still never fire (30 February).
    _next(expression, datetime(2000, 1, 1))


def next_fire(expression: str, after: datetime) -> datetime:
    """The first occurrence of ``expression`` strictly after ``after``, in ``after``'s time zone (naive stays naive)."""
    _check_syntax(expression)
    return _next(expression, after)


def _next(expression: str, after: datetime) -> datetime:
    try:
        return croniter(expression, after, second_at_beginning=True, day_or=False).get_next(datetime)
    except CroniterBadDateError as exc:
        raise ValueError(f"NCRONTAB expression {expression!r} never fires") from exc


def _check_syntax(expression: str) -> None:
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"NCRONTAB expression {expression!r} has {len(fields)} fields; "
            f"Azure Functions timer schedules need six: {_LAYOUT}"
        )
    for spec, text in zip(_FIELDS, fields, strict=True):
        for item in text.split(","):
            _check_item(expression, spec, item)


def _check_item(expression: str, spec: _Field, item: str) -> None:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise ValueError(f"NCRONTAB expression {expression!r}: {spec.name} field item {item!r} is not valid")
    start, end, step = match["start"], match["end"], match["step"]
    if step is not None and int(step) == 0:
        raise ValueError(f"NCRONTAB expression {expression!r}: {spec.name} step must be at least 1")
    if start is None:
        return
    first = _value(expression, spec, start)
    last = first if end is None else _value(expression, spec, end)
    if first > last:
        raise ValueError(f"NCRONTAB expression {expression!r}: {spec.name} range {item!r} runs backwards")


def _value(expression: str, spec: _Field, token: str) -> int:
    if token.isdigit():
        value = int(token)
        if not spec.low <= value <= spec.high:
            raise ValueError(
                f"NCRONTAB expression {expression!r}: {spec.name} {value} is outside {spec.low}-{spec.high}"
            )
        return value
    if token.upper() in spec.names:
        return spec.low + spec.names.index(token.upper())
    raise ValueError(f"NCRONTAB expression {expression!r}: {token!r} is not a valid {spec.name}")
