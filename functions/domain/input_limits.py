"""The limits on everything that comes in, in one place (docs/limits.md lists them for people).

HTTP requests (functions/entrypoints/limits.py applies them) and Event Grid events (the service's
delivery applies them) share one walker, so a document too deep, a string too long or text that is not
valid Unicode (a lone surrogate, which no UTF-8 store can write) is refused the same way everywhere.
The event limits follow Event Grid's own: an event is at most 1 MiB, a delivery batch at most 1 MiB
(a larger single event comes alone) and at most 5,000 events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Event Grid: an event of at most 1 MB (1,048,576 bytes); batches up to 1 MB and 5,000 events.
MAX_EVENT_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 5000
# A webhook body holds one batch: the largest event alone, plus the array around it.
MAX_WEBHOOK_BODY_BYTES = MAX_EVENT_BYTES + 1024
MAX_JSON_DEPTH = 32
MAX_STRING_CHARS = 64 * 1024
MAX_EVENT_ID_CHARS = 256
# Training parameters of a BuildCompleted: a handful of hyperparameters, never a document.
MAX_PARAMETER_DEPTH = 4
MAX_PARAMETER_BYTES = 16 * 1024
MAX_PARAMETER_ENTRIES = 100
# What a dead letter keeps of its payload: the start of its JSON text, with the size and sha256 of the whole.
DEAD_LETTER_EXCERPT_CHARS = 2048
# Listings (releases, dead letters, parked events): the page's default and largest size, and a page cursor
# (a store's position, as its ``next`` handed it out) of at most this many ASCII digits.
DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_CURSOR_DIGITS = 20


@dataclass(frozen=True)
class ShapeProblem:
    kind: str  # "depth", "string" or "unicode"
    message: str


@dataclass(frozen=True)
class ShapeLimits:
    max_depth: int = MAX_JSON_DEPTH
    max_string_chars: int = MAX_STRING_CHARS


def shape_problem(document: Any, limits: ShapeLimits = ShapeLimits(), what: str = "body") -> ShapeProblem | None:
    """Why ``document`` breaks the limits (depth, string length, invalid Unicode), or None.

    Walked without recursion, so a deep document cannot overflow the stack."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if len(value) > limits.max_string_chars:
                return ShapeProblem("string", f"{what} has a string longer than {limits.max_string_chars} characters")
            if not is_valid_unicode(value):
                return ShapeProblem("unicode", f"{what} has text that is not valid Unicode (a lone surrogate)")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > limits.max_depth:
            return ShapeProblem("depth", f"{what} is nested deeper than {limits.max_depth} levels")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        else:
            pending.extend((item, depth + 1) for item in value)
    return None


def nested_deeper_than(document: Any, max_depth: int) -> bool:
    """Whether ``document`` nests lists and objects deeper than ``max_depth`` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                return True
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return False


def is_valid_unicode(text: str) -> bool:
    """False for text with a lone surrogate (JSON's "\\ud800" decodes to one): it cannot become UTF-8."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe to store and show: lone surrogates escaped (\\ud800), at most ``limit`` characters."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def json_text(document: Any) -> str | None:
    """``document`` as ASCII JSON text (invalid Unicode escaped), or None when it cannot be serialised."""
    try:
        return json.dumps(document, ensure_ascii=True, default=str)
    except (RecursionError, ValueError, TypeError):
        return None


def parameters_problem(parameters: Any, what: str) -> str | None:
    """Why training parameters are not a small object of hyperparameters, or None."""
    if not isinstance(parameters, dict):
        return f"{what} must be an object"
    problem = shape_problem(parameters, ShapeLimits(max_depth=MAX_PARAMETER_DEPTH), what)
    if problem:
        return problem.message
    entries, pending = 0, [parameters]
    while pending:
        value = pending.pop()
        if isinstance(value, dict | list):
            children = list(value.values()) if isinstance(value, dict) else value
            entries += len(children)
            pending.extend(children)
    if entries > MAX_PARAMETER_ENTRIES:
        return f"{what} has more than {MAX_PARAMETER_ENTRIES} entries"
    text = json_text(parameters) or ""
    if len(text) > MAX_PARAMETER_BYTES:
        return f"{what} is larger than {MAX_PARAMETER_BYTES} bytes as JSON"
    return None


def event_problem(payload: Any) -> str | None:
    """Why one delivered event breaks the event limits (shape, then Event Grid's 1 MiB), or None."""
    problem = shape_problem(payload, ShapeLimits(), "event")
    if problem:
        return problem.message
    size = len(json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        return f"event is {size} bytes as JSON, more than Event Grid's limit of {MAX_EVENT_BYTES}"
    return None
