"""GET /api/openapi.json against the app itself: the same routes, methods and auth, every error documented.

Each rule is a function returning what breaks it, run on the real document and, to show the rule can
fail, on a document broken on purpose.
"""

from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func
import jsonschema
import jsonschema_rs
import pytest
import schemathesis

from devhost.indexing import function_name, http_methods, indexed_functions, trigger_of
from functions import bootstrap
from functions.domain.approval import ApprovalPolicy
from functions.domain.ids import image_tag, release_id_for_build
from functions.domain.release import State
from functions.entrypoints import http_api, openapi
from functions.entrypoints.limits import DEFAULT_LIMITS, RequestRejected, query_words
from functions.links import Links
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, fake_ports

Spec = dict[str, Any]
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FUNCTION_KEY: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyHeader": []}]


def app_routes() -> dict[tuple[str, str], tuple[str, func.AuthLevel]]:
    """(path, method) -> (function name, auth level) for every HTTP function function_app.py registers."""
    import function_app

    routes = {}
    for function in indexed_functions(function_app.app):
        trigger = trigger_of(function)
        if trigger.get_binding_name() != "httpTrigger":
            continue
        methods = http_methods(trigger)
        assert methods, f"{function_name(function)} takes every method: list them, so the spec can"
        for method in methods:
            routes[("/" + trigger.route.strip("/"), method.lower())] = (function_name(function), trigger.auth_level)
    return routes


def operations(spec: Spec) -> dict[tuple[str, str], Spec]:
    return {
        (path, method): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def route_mismatches(spec: Spec) -> list[str]:
    routes, documented = app_routes(), operations(spec)
    problems = [f"{method.upper()} {path} is not in the spec" for path, method in routes.keys() - documented.keys()]
    problems += [
        f"{method.upper()} {path} is no route of the app" for path, method in documented.keys() - routes.keys()
    ]
    for key in routes.keys() & documented.keys():
        name, _ = routes[key]
        if documented[key].get("operationId") != name:
            problems.append(f"{key}: operationId {documented[key].get('operationId')!r}, function {name!r}")
    return problems


def auth_mismatches(spec: Spec) -> list[str]:
    """Function-key routes say so; anonymous ones never ask for a key."""
    problems = []
    for key, (name, level) in app_routes().items():
        security = operations(spec).get(key, {}).get("security")
        keyed = security == FUNCTION_KEY
        if (level == func.AuthLevel.FUNCTION) != keyed:
            problems.append(f"{name}: auth level {level.name}, security {security}")
    return problems


def undocumented_errors(spec: Spec) -> list[str]:
    """Every 4xx is the Error schema in JSON; only the approval page (tag ui) answers HTML pages instead."""
    problems = []
    for (path, method), operation in operations(spec).items():
        is_page = openapi.UI_TAG in operation.get("tags", [])
        for status, response in operation["responses"].items():
            if not status.startswith("4"):
                continue
            content = response.get("content", {})
            where = f"{method.upper()} {path} {status}"
            if openapi.JSON in content and content[openapi.JSON].get("schema") != openapi.ERROR_REF:
                problems.append(f"{where}: JSON that is not the Error schema")
            if openapi.HTML in content and not is_page:
                problems.append(f"{where}: HTML from the JSON API")
            if openapi.JSON not in content and not (is_page and openapi.HTML in content):
                problems.append(f"{where}: no Error body documented")
            if set(content) - {openapi.JSON, openapi.HTML}:
                problems.append(f"{where}: unexpected content {sorted(content)}")
    return problems


def dangling_references(spec: Spec) -> list[str]:
    text = json.dumps(spec)
    schemes = spec["components"]["securitySchemes"]
    problems = [
        f"{ref} is not defined"
        for ref in set(_refs(spec))
        if ref.removeprefix("#/components/schemas/") not in spec["components"]["schemas"]
    ]
    for operation in operations(spec).values():
        problems += [
            f"scheme {name} is not defined" for r in operation["security"] for name in r if name not in schemes
        ]
    problems += [f"scheme {name} is never used" for name in schemes if f'"{name}": []' not in text]
    return problems


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


RULES = (route_mismatches, auth_mismatches, undocumented_errors, dangling_references)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_spec_keeps_the_rule(rule):
    assert rule(openapi.document()) == []


def _responses(spec: Spec, path: str, method: str = "get") -> Spec:
    return spec["paths"][path][method]["responses"]


def _answer(media_type: str, schema: Spec) -> Spec:
    return {"description": "broken on purpose", "content": {media_type: {"schema": schema}}}


NOWHERE = {"$ref": "#/components/schemas/Nothing"}
# What each rule must catch: (rule, a way to break the document).
BREAKAGES = (
    (route_mismatches, lambda spec: spec["paths"].pop("/parked")),
    (route_mismatches, lambda spec: spec["paths"]["/releases"].update(delete=spec["paths"]["/releases"]["get"])),
    (route_mismatches, lambda spec: spec["paths"]["/health"]["get"].update(operationId="healthz")),
    (auth_mismatches, lambda spec: spec["paths"]["/releases"]["get"].update(security=[])),
    (auth_mismatches, lambda spec: spec["paths"]["/health"]["get"].update(security=FUNCTION_KEY)),
    (undocumented_errors, lambda spec: _responses(spec, "/releases/{id}").update({"404": {"description": "gone"}})),
    (undocumented_errors, lambda spec: _responses(spec, "/releases").update({"400": _answer("text/html", {})})),
    (undocumented_errors, lambda spec: _responses(spec, "/ui").update({"401": _answer("application/json", {})})),
    (
        dangling_references,
        lambda spec: _responses(spec, "/health").update({"200": _answer("application/json", NOWHERE)}),
    ),
    (dangling_references, lambda spec: spec["components"]["securitySchemes"].update(unused={"type": "http"})),
)


@pytest.mark.parametrize(
    ("rule", "breakage"), BREAKAGES, ids=[f"{rule.__name__}-{i}" for i, (rule, _) in enumerate(BREAKAGES)]
)
def test_each_rule_catches_a_broken_spec(rule, breakage):
    spec = openapi.document()
    assert rule(spec) == []
    breakage(spec)
    assert rule(spec)


def test_the_document_is_valid_openapi():
    spec = openapi.document()
    assert spec["openapi"] == "3.0.3"
    schemathesis.openapi.from_dict(spec).validate()  # the OpenAPI 3.0 JSON Schema, as schemathesis checks it


def test_an_invalid_document_is_refused():
    spec = openapi.document()
    spec["paths"]["/health"]["get"]["responses"] = {"200": {"content": {}}}  # a response needs a description
    with pytest.raises(ValueError, match=r'\["responses"\]\[200\]'):  # jsonschema_rs' ValidationError
        schemathesis.openapi.from_dict(spec).validate()


def test_the_limits_come_from_the_code():
    spec = openapi.document()
    listing = spec["paths"]["/releases"]["get"]
    parameters = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": http_api.MAX_LIST, "default": 50}
    accepted = re.compile(parameters["state"]["pattern"])  # what query_words reads, as one pattern
    for given in ("", ",", "live", "live,failed", ",live,,failed,", ",".join(["live"] * DEFAULT_LIMITS.max_words)):
        assert accepted.match(given) and query_words({"state": given}, "state", http_api.STATES) is not None, given
    for given in ("nope", "live,nope", "live failed", ",".join(["live"] * (DEFAULT_LIMITS.max_words + 1))):
        assert not accepted.match(given), given
        with pytest.raises(RequestRejected):
            query_words({"state": given}, "state", http_api.STATES)
    assert set(State) == {State(value) for value in http_api.STATES}
    approve = spec["paths"]["/releases/{id}/approve"]["post"]
    assert f"at most {DEFAULT_LIMITS.max_body_bytes} bytes" in approve["description"]
    assert f"nested at most {DEFAULT_LIMITS.max_json_depth} levels" in approve["description"]
    assert f"at most {DEFAULT_LIMITS.max_string_chars} characters" in approve["description"]
    assert {"413", "415", "401", "403", "404", "409", "410", "400"} <= set(approve["responses"])
    for path in ("/dead-letters", "/parked"):
        cursor = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "before")
        assert cursor["schema"] == {"type": "string", "pattern": "^[0-9]{0,20}$", "maxLength": 20}


# Success bodies, as the real handlers answer them, against the schemas the spec gives them.
RELEASE = release_id_for_build("4242")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Followed:
    """A release awaiting approval, a dead letter and a parked event, behind the real HTTP handlers."""
    orchestrator = Followed(fake_ports(Calls()), links=Links(), approval_policy=ApprovalPolicy(), clock=Clock())
    monkeypatch.setattr(bootstrap, "context", lambda: orchestrator.ctx)
    orchestrator.receive("on_build_event", p.build_completed("4242"))
    orchestrator.receive("on_ml_event", p.run_completed(f"job-{RELEASE}", RELEASE))
    orchestrator.receive("on_ml_event", p.model_registered(1, RELEASE))
    orchestrator.receive("on_registry_event", p.image_pushed(image_tag("1", RELEASE)))
    orchestrator.receive("on_build_event", {"id": "broken", "eventType": "MLOps.BuildCompleted", "data": 7})
    orchestrator.ctx.ports.store.park(RELEASE, "evt-1", {"eventType": "Any"}, "2026-01-01T00:00:00+00:00")
    return orchestrator


def request(url: str, **route: str) -> func.HttpRequest:
    return func.HttpRequest("GET", f"http://127.0.0.1:7071/api{url}", body=b"", route_params=route)


ANSWERS = (
    ("/releases", lambda: http_api.list_releases(request("/releases")), "releases"),
    ("/releases/{id}", lambda: http_api.get_release(request(f"/releases/{RELEASE}", id=RELEASE)), "state"),
    ("/dead-letters", lambda: http_api.dead_letters(request("/dead-letters")), "dead_letters"),
    ("/parked", lambda: http_api.parked_events(request("/parked")), "parked"),
)


@pytest.mark.parametrize(("path", "answer", "key"), ANSWERS, ids=[path for path, _, _ in ANSWERS])
def test_the_handlers_answer_the_documented_schema(world, path, answer, key):
    response = answer()
    body = json.loads(response.get_body())
    assert response.status_code == 200 and body[key], body  # something real to validate, not an empty list
    documented = openapi.document()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    validator(documented["schema"]).validate(body)


def test_a_handler_error_is_the_documented_error(world):
    response = http_api.list_releases(func.HttpRequest("GET", "http://h/api/releases", body=b"", params={"limit": "0"}))
    assert response.status_code == 400
    validator(openapi.ERROR_REF).validate(json.loads(response.get_body()))
    with pytest.raises(jsonschema.ValidationError):
        validator(openapi.ERROR_REF).validate({"message": "not the Error schema"})


def validator(schema: Spec) -> jsonschema.Draft4Validator:
    """OpenAPI 3.0 schemas are JSON Schema draft 4 plus ``nullable``; refs resolve in the spec's components."""
    components = _without_nullable(openapi.document()["components"])
    return jsonschema.Draft4Validator({**_without_nullable(schema), "components": components})


def _without_nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_nullable(value) for value in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _without_nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    return converted


def test_not_blank_is_what_str_strip_keeps():
    """The rollback's comment and "to" must survive the app's strip(); \\S alone lets \\x1c-\\x1f through."""
    checks = (
        jsonschema_rs.validator_for({"type": "string", "pattern": openapi.NOT_BLANK}),
        re.compile(openapi.NOT_BLANK),
    )
    blank = [char for char in map(chr, range(0x3001)) if not char.strip()]
    assert len(blank) > 20
    for char in blank:
        assert not checks[0].is_valid(char) and not checks[1].search(char), hex(ord(char))
    assert all(checks[0].is_valid(text) and checks[1].search(text) for text in ("x", " why ", "\x1dv2"))


def test_the_route_answers_the_document_as_json():
    import function_app

    request = func.HttpRequest("GET", "http://127.0.0.1:7071/api/openapi.json", body=b"")
    response = function_app.openapi(request)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert json.loads(response.get_body()) == openapi.document()
