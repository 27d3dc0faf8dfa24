"""Route templates: ASP.NET-style parameters, constraints, optional and catch-all segments, precedence."""

from __future__ import annotations

import pytest

from devhost.routes import RouteTemplate


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id:int:min(1)}", "/items/3", {"id": "3"}),
        ("items/{id:int:min(1)}", "/items/0", None),
        ("items/{id:range(1,9)}", "/items/10", None),
        ("tags/{tag:alpha:maxlength(3)}", "/tags/abc", {"tag": "abc"}),
        ("tags/{tag:alpha:maxlength(3)}", "/tags/abcd", None),
        (
            "runs/{run:guid}",
            "/runs/8a7c3e5e-6d1f-4c1b-9f5e-2b0a3c4d5e6f",
            {"run": "8a7c3e5e-6d1f-4c1b-9f5e-2b0a3c4d5e6f"},
        ),
        ("runs/{run:guid}", "/runs/nope", None),
        ("flags/{on:bool}", "/flags/True", {"on": "True"}),
        ("pages/{page=1}", "/pages", {"page": "1"}),
        ("files/{*path}", "/files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{*path}", "/files", {}),
        ("models/{name}.{version}", "/models/ridge.3", {"name": "ridge", "version": "3"}),
        ("/Models/latest/", "/models/LATEST", {}),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate.parse(template).match(path) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("items/{id:regex(^\\d+$)}", "not supported"),
        ("items/{id:min(x)}", "bad arguments"),
        ("items/{id:length(1,2,3)}", "bad arguments"),
        ("items/{id?}/details", "may only be the last segment"),
        ("items/{id", "unbalanced braces"),
    ],
)
def test_bad_route_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTemplate.parse(template)


def test_literal_then_constrained_then_plain_then_catch_all() -> None:
    templates = ["items/{*rest}", "items/{id}", "items/{id:int}", "items/special"]
    ordered = sorted(templates, key=lambda template: RouteTemplate.parse(template).precedence)
    assert ordered == ["items/special", "items/{id:int}", "items/{id}", "items/{*rest}"]
