"""Jinja2 for the page, loaded on first use (the function app starts without it): autoescaped HTML."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.entrypoints.ui import charts

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"


def render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(**values)


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value is text unless a chart (markupsafe.Markup) says otherwise
        undefined=jinja2.StrictUndefined,  # a misspelt name fails in the tests, not silently on the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = _number
    environment.filters["signed"] = lambda value: _number(value, signed=True)
    environment.filters["when"] = _when
    return environment


def _when(value: Any) -> str:
    """An ISO UTC time as people read it: 2026-12-02 00:44:12 UTC (the record keeps the ISO form)."""
    text = str(value or "")
    if len(text) >= 19 and text[10] == "T":
        return f"{text[:10]} {text[11:19]} UTC"
    return text


def _number(value: Any, signed: bool = False) -> str:
    if value is None or value == "":
        return "—"
    try:
        return charts.number(float(value), signed=signed)
    except (TypeError, ValueError):
        return str(value)
