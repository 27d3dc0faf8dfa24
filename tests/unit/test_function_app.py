"""function_app.py as the Functions host and its Python worker see it."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from devhost.indexing import check_indexing, http_methods, indexed_functions, trigger_of
from functions.service.subscriptions import FUNCTION_EVENT_TYPES
from functions.settings import DEFAULT_RECONCILE_SCHEDULE, RECONCILE_SCHEDULE_SETTING


@pytest.fixture(autouse=True)
def reconcile_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host resolves the timer's %MLOPS_RECONCILE_SCHEDULE% from the app settings, as on Azure."""
    monkeypatch.setenv(RECONCILE_SCHEDULE_SETTING, DEFAULT_RECONCILE_SCHEDULE)


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
        ("dead-letters", ("GET",)),
        ("hooks/azure-devops", ("POST",)),
        ("hooks/github", ("POST",)),
    }
    timer = trigger_of(functions["reconcile"])
    assert timer.get_binding_name() == "timerTrigger"
    assert timer.schedule == f"%{RECONCILE_SCHEDULE_SETTING}%" and DEFAULT_RECONCILE_SCHEDULE == "0 * * * * *"
    bindings = json.loads(functions["on_ml_event"].get_function_json())["bindings"]
    assert bindings == [{"type": "eventGridTrigger", "direction": "IN", "name": "event"}]
