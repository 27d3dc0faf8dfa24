"""functions.entrypoints.limits: one set of request limits, and every HTTP and webhook route behind it."""

from __future__ import annotations

import html
import json
import re

import azure.functions as func
import pytest

from devhost.indexing import http_methods, indexed_functions, trigger_of
from functions import bootstrap
from functions.entrypoints import http_api
from functions.entrypoints.hooks import azure_devops
from functions.entrypoints.limits import DEFAULT_LIMITS, RequestLimits, RequestRejected, parse_json, query_int
from functions.links import Links
from functions.service.orchestrator import Orchestrator
from tests.doubles.ports import Calls, fake_ports

SMALL = RequestLimits(max_body_bytes=100, max_json_depth=3, max_string_chars=5, max_query_digits=3)


def rejected(call) -> tuple[int, str]:
    with pytest.raises(RequestRejected) as caught:
        call()
    return caught.value.status, str(caught.value)


def test_documented_defaults():
    assert (
        RequestLimits(max_body_bytes=2 * 1024 * 1024, max_json_depth=32, max_string_chars=64 * 1024, max_query_digits=9)
        == DEFAULT_LIMITS
    )


def test_body_size_depth_and_string_length():
    assert parse_json(b'{"a": [1, {"b": "12345"}]}', SMALL) == {"a": [1, {"b": "12345"}]}
    assert rejected(lambda: parse_json(b" " * 101, SMALL))[0] == 413
    assert rejected(lambda: parse_json(b'{"a": [[[1]]]}', SMALL)) == (400, "body is nested deeper than 3 levels")
    assert rejected(lambda: parse_json(b'["123456"]', SMALL))[1] == "body has a string longer than 5 characters"
    assert rejected(lambda: parse_json(b'{"123456": 1}', SMALL))[0] == 400  # keys count as strings
    assert rejected(lambda: parse_json(b"{not json", SMALL)) == (400, "body must be JSON")
    assert rejected(lambda: parse_json(b"\xff\xfe", SMALL)) == (400, "body must be JSON")


def test_nesting_far_past_the_decoder_is_a_400_not_a_recursion_error():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert rejected(lambda: parse_json(deep, RequestLimits(max_body_bytes=10**6)))[0] == 400


def test_query_integers():
    assert query_int({}, "limit", 50, 1, 500) == 50
    assert query_int({"limit": "7"}, "limit", 50, 1, 500) == 7
    for raw in ("0", "501", "-1", "1e3", "٣", "9" * 5000, " 7"):
        assert rejected(lambda raw=raw: query_int({"limit": raw}, "limit", 50, 1, 500)) == (
            400,
            "limit must be an integer between 1 and 500",
        )


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Orchestrator:
    orchestrator = Orchestrator(fake_ports(Calls()), links=Links())
    monkeypatch.setattr(bootstrap, "context", lambda: orchestrator.ctx)
    monkeypatch.setenv("MLOPS_HOOK_SECRET", "ado-secret")
    monkeypatch.setenv("MLOPS_GITHUB_WEBHOOK_SECRET", "gh-secret")
    monkeypatch.setenv("MLOPS_GENERIC_WEBHOOK_SECRET", "generic-secret")
    return orchestrator


def post(route: str, body: bytes, headers: dict[str, str] | None = None) -> func.HttpRequest:
    """A JSON POST (the decision routes answer 415 to any other content type before the limits)."""
    return func.HttpRequest(
        "POST",
        f"http://127.0.0.1:7071/api/{route}",
        headers={"Content-Type": "application/json", **(headers or {})},
        body=body,
        route_params={"id": "rel-1"},
    )


def answer(response: func.HttpResponse) -> tuple[int, str]:
    """The status and the error: the API's {"error": ...}, or the approval page's alert (it answers HTML)."""
    body = response.get_body().decode()
    if response.mimetype == "text/html":
        found = re.search(r'<p class="notice [^"]*" role="alert">(.*?)</p>', body, re.S)
        assert found is not None, body
        return response.status_code, html.unescape(found.group(1))
    return response.status_code, json.loads(body)["error"]


def http_functions(method: str) -> list[func.Function]:
    """function_app's HTTP functions that take ``method``: a new route is covered without editing this test."""
    import function_app

    return [
        f
        for f in indexed_functions(function_app.app)
        if trigger_of(f).type == "httpTrigger" and method in (http_methods(trigger_of(f)) or {method})
    ]


@pytest.mark.parametrize("function", http_functions("POST"), ids=lambda f: f.get_function_name())
def test_every_post_route_refuses_an_oversized_body_with_413(app, function):
    response = function.get_user_function()(post("x", b" " * (DEFAULT_LIMITS.max_body_bytes + 1)))
    status, message = answer(response)
    assert status == 413 and "larger than" in message


@pytest.mark.parametrize(
    "function", [f for f in http_functions("GET") if "{id}" in trigger_of(f).route], ids=lambda f: f.get_function_name()
)
def test_every_route_with_an_id_refuses_an_id_past_the_word_limit(app, function):
    request = func.HttpRequest("GET", "http://127.0.0.1/api/x", body=b"", route_params={"id": "r" * 201})
    assert answer(function.get_user_function()(request)) == (400, "release id is longer than 200 characters")


def test_decisions_refuse_deep_json_and_long_strings(app):
    deep = json.dumps({"by": "a", "comment": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})
    assert answer(http_api.approve_release(post("releases/rel-1/approve", deep.encode()))) == (
        400,
        "body is nested deeper than 32 levels",
    )
    long = json.dumps({"by": "a" * (DEFAULT_LIMITS.max_string_chars + 1)}).encode()
    assert answer(http_api.approve_release(post("releases/rel-1/approve", long)))[0] == 400


def test_list_limit_with_thousands_of_digits_is_a_400(app):
    request = func.HttpRequest("GET", "http://127.0.0.1:7071/api/releases", body=b"", params={"limit": "9" * 5000})
    assert answer(http_api.list_releases(request)) == (400, "limit must be an integer between 1 and 500")


def test_azure_devops_hook_refuses_deep_json_after_authentication(app):
    deep = b"[" * 50_000 + b"]" * 50_000
    response = azure_devops.azure_devops(post("hooks/azure-devops", deep, {"X-MLOps-Secret": "ado-secret"}))
    assert answer(response) == (400, "body is nested deeper than 32 levels")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": ""}, "limit must be an integer between 1 and 500"),
        ({"state": "live,teleported"}, "state 'teleported' is not one of "),
        ({"state": ",".join(["live"] * 21)}, "state takes at most 20 values"),
    ],
)
def test_list_parameters_are_checked_before_the_store_is_asked(app, params, message):
    request = func.HttpRequest("GET", "http://127.0.0.1:7071/api/releases", body=b"", params=params)
    status, error = answer(http_api.list_releases(request))
    assert status == 400 and error.startswith(message)


def test_a_state_filter_names_known_states_once(app):
    request = func.HttpRequest("GET", "http://127.0.0.1/api/releases", body=b"", params={"state": "live,live,failed"})
    assert http_api.list_releases(request).status_code == 200
