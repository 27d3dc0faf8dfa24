"""Request limits every HTTP route and webhook goes through, so no request can make a 500 or eat memory.

Defaults (RequestLimits()):
- body: at most 2 MiB (413 beyond);
- JSON: at most 32 levels of nesting, strings (and object keys) at most 64 KiB each, valid Unicode
  (no lone surrogate) (400 beyond);
- integers in query strings: ASCII digits only, at most 9 of them, within the route's own bounds (400);
- route and query words (ids, state names): at most 200 characters each, at most 20 words in a list (400).

Routes call `parse_json` / `query_int` / `query_words` / `route_word` and turn RequestRejected into its
status with {"error": ...}; its ``reason`` says which limit it was, for routes that word it their way.
The numbers live in functions/domain/input_limits.py with the event limits; docs/limits.md lists them all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.domain import input_limits
from functions.domain.input_limits import ShapeLimits, shape_problem


class RequestRejected(ValueError):
    """The request breaks a limit or is malformed; ``status`` is the HTTP answer (400 or 413),
    ``reason`` one of "size", "not_json", "depth", "string", "unicode", "query"."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = input_limits.MAX_JSON_DEPTH
    max_string_chars: int = input_limits.MAX_STRING_CHARS
    max_query_digits: int = 9
    max_word_chars: int = 200
    max_words: int = 20


DEFAULT_LIMITS = RequestLimits()


def check_body_size(body: bytes, limits: RequestLimits = DEFAULT_LIMITS) -> bytes:
    if len(body) > limits.max_body_bytes:
        raise RequestRejected(413, f"body larger than {limits.max_body_bytes} bytes", "size")
    return body


def parse_json(body: bytes, limits: RequestLimits = DEFAULT_LIMITS, what: str = "body") -> Any:
    """JSON within the limits; RequestRejected(400/413) naming the problem otherwise."""
    check_body_size(body, limits)
    try:
        document = json.loads(body)
    except RecursionError:  # the C decoder gives up on very deep nesting before our own check can run
        raise RequestRejected(400, f"{what} is nested deeper than {limits.max_json_depth} levels", "depth") from None
    except (UnicodeDecodeError, ValueError):
        raise RequestRejected(400, f"{what} must be JSON", "not_json") from None
    check_json_shape(document, limits, what)
    return document


def check_json_shape(document: Any, limits: RequestLimits = DEFAULT_LIMITS, what: str = "body") -> None:
    """Depth, string lengths and valid Unicode (functions/domain/input_limits.py walks it without recursion)."""
    shape = ShapeLimits(max_depth=limits.max_json_depth, max_string_chars=limits.max_string_chars)
    problem = shape_problem(document, shape, what)
    if problem:
        raise RequestRejected(400, problem.message, problem.kind)


def query_int(
    params: Mapping[str, str], name: str, default: int, low: int, high: int, limits: RequestLimits = DEFAULT_LIMITS
) -> int:
    """An integer query parameter within [low, high]; a clear 400 for anything else (no int() of 5,000 digits)."""
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > limits.max_query_digits or not low <= int(raw) <= high:
        raise RequestRejected(400, f"{name} must be an integer between {low} and {high}", "query")
    return int(raw)


def query_words(
    params: Mapping[str, str], name: str, allowed: frozenset[str], limits: RequestLimits = DEFAULT_LIMITS
) -> list[str]:
    """A comma-separated list of known words (``?state=live,failed``), each once, in the order given."""
    words = [word for word in (params.get(name) or "").split(",") if word]
    if len(words) > limits.max_words:
        raise RequestRejected(400, f"{name} takes at most {limits.max_words} values", "query")
    unknown = [word for word in words if word not in allowed]
    if unknown:
        shown = unknown[0][: limits.max_word_chars]
        raise RequestRejected(400, f"{name} {shown!r} is not one of {', '.join(sorted(allowed))}", "query")
    return list(dict.fromkeys(words))


def query_cursor(params: Mapping[str, str], name: str = "before") -> str | None:
    """A page cursor as a listing handed it out (``next``): ASCII digits, at most MAX_CURSOR_DIGITS of them."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > input_limits.MAX_CURSOR_DIGITS:
        raise RequestRejected(400, f"{name} must be a cursor from a previous page's next (digits)", "query")
    return raw


def route_word(value: str, name: str, limits: RequestLimits = DEFAULT_LIMITS) -> str:
    """A route parameter (an id) within the word limit."""
    if len(value) > limits.max_word_chars:
        raise RequestRejected(400, f"{name} is longer than {limits.max_word_chars} characters", "query")
    return value
