"""function_app.py as the Functions host and its Python worker see it."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from devhost.indexing import check_indexing, function_name, http_methods, indexed_functions, trigger_of
from functions.service.subscriptions import FUNCTION_EVENT_TYPES
from functions.settings import (
    DEFAULT_FOLLOW_SCHEDULE,
    DEFAULT_RECONCILE_SCHEDULE,
    FOLLOW_SCHEDULE_SETTING,
    RECONCILE_SCHEDULE_SETTING,
)


@pytest.fixture(autouse=True)
def reconcile_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host resolves the timers' %MLOPS_..._SCHEDULE% from the app settings, as on Azure."""
    monkeypatch.setenv(RECONCILE_SCHEDULE_SETTING, DEFAULT_RECONCILE_SCHEDULE)
    monkeypatch.setenv(FOLLOW_SCHEDULE_SETTING, DEFAULT_FOLLOW_SCHEDULE)


def load_app() -> func.FunctionApp:
    import function_app

    return function_app.app


def test_the_app_indexes_the_way_the_worker_indexes_it():
    assert check_indexing(load_app()) == []


def test_functions_triggers_and_routes():
    functions = {f.get_function_name(): f for f in indexed_functions(load_app())}
    assert {name for name, f in functions.items() if trigger_of(f).get_binding_name() == "eventGridTrigger"} == set(
        FUNCTION_EVENT_TYPES
    )
    routes = {
        (trigger_of(f).route, tuple(sorted(http_methods(trigger_of(f)) or ())))
        for f in functions.values()
        if trigger_of(f).get_binding_name() == "httpTrigger"
    }
    assert routes == {
        ("health", ("GET",)),
        ("releases", ("GET",)),
        ("releases/{id}", ("GET",)),
        ("releases/{id}/approve", ("POST",)),
        ("releases/{id}/reject", ("POST",)),
        ("production/rollback", ("POST",)),
        ("dead-letters", ("GET",)),
        ("parked", ("GET",)),
        ("hooks/azure-devops", ("POST",)),
        ("hooks/github", ("POST",)),
        ("hooks/generic", ("POST",)),
        ("ui", ("GET",)),
        ("ui/releases/{id}", ("GET",)),
        ("ui/releases/{id}/approve", ("POST",)),
        ("ui/releases/{id}/reject", ("POST",)),
        ("ui/releases/{id}/rollback", ("POST",)),
        ("ui/login", ("GET",)),
        ("ui/logout", ("POST",)),
        ("openapi.json", ("GET",)),
    }
    timer = trigger_of(functions["reconcile"])
    assert timer.get_binding_name() == "timerTrigger"
    assert timer.schedule == f"%{RECONCILE_SCHEDULE_SETTING}%" and DEFAULT_RECONCILE_SCHEDULE == "0 * * * * *"
    follow = trigger_of(functions["follow_operations"])
    assert follow.get_binding_name() == "timerTrigger" and follow.schedule == f"%{FOLLOW_SCHEDULE_SETTING}%"
    bindings = json.loads(functions["on_ml_event"].get_function_json())["bindings"]
    assert bindings == [{"type": "eventGridTrigger", "direction": "IN", "name": "event"}]


# Every HTTP function's auth level, as the Functions host reads it from the indexed trigger. A new HTTP
# function fails here until its level is chosen on purpose.
AUTH_LEVELS = {
    "health": func.AuthLevel.ANONYMOUS,
    # Reads stay behind the platform's function key for now.
    "list_releases": func.AuthLevel.FUNCTION,
    "get_release": func.AuthLevel.FUNCTION,
    "dead_letters": func.AuthLevel.FUNCTION,
    "parked_events": func.AuthLevel.FUNCTION,
    "openapi": func.AuthLevel.ANONYMOUS,
    # Decisions need a proven identity, which the app checks itself (401 without): a function key is a
    # shared secret, not an identity, and must not end up in a link.
    "approve_release": func.AuthLevel.ANONYMOUS,
    "decline_release": func.AuthLevel.ANONYMOUS,
    "rollback_production": func.AuthLevel.ANONYMOUS,  # the same protection as a decision
    # The CI hooks check their own signatures.
    "azure_devops_hook": func.AuthLevel.ANONYMOUS,
    "github_hook": func.AuthLevel.ANONYMOUS,
    "generic_hook": func.AuthLevel.ANONYMOUS,
    # The approval page signs its reader in itself (Easy Auth on Azure, a session cookie locally): a
    # browser cannot send a function key.
    "ui_releases": func.AuthLevel.ANONYMOUS,
    "ui_release": func.AuthLevel.ANONYMOUS,
    "ui_approve": func.AuthLevel.ANONYMOUS,
    "ui_decline": func.AuthLevel.ANONYMOUS,
    "ui_rollback": func.AuthLevel.ANONYMOUS,
    "ui_login": func.AuthLevel.ANONYMOUS,
    "ui_logout": func.AuthLevel.ANONYMOUS,
}


def test_every_http_function_has_its_auth_level():
    http = {
        function_name(f): f for f in indexed_functions(load_app()) if trigger_of(f).get_binding_name() == "httpTrigger"
    }
    assert {name: trigger_of(f).auth_level for name, f in http.items()} == AUTH_LEVELS
    # The same in the binding the host reads (function.json's authLevel).
    for name, f in http.items():
        (binding,) = [b for b in json.loads(f.get_function_json())["bindings"] if b["type"] == "httpTrigger"]
        assert binding["authLevel"] == AUTH_LEVELS[name].name, name


def test_no_state_changing_route_takes_a_function_key():
    """Every POST route is anonymous at the platform: the app itself proves who calls it."""
    for f in indexed_functions(load_app()):
        trigger = trigger_of(f)
        if trigger.get_binding_name() == "httpTrigger" and set(http_methods(trigger) or ()) - {"GET", "HEAD"}:
            assert trigger.auth_level == func.AuthLevel.ANONYMOUS, function_name(f)
