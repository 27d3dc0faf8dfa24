"""function_app.py as the Functions host and its Python worker see it."""

from __future__ import annotations

import json
import subprocess
import sys

import azure.functions as func

from devhost.indexing import check_indexing, http_methods, indexed_functions
from devhost.settings import REPO_ROOT
from functions.service.subscriptions import FUNCTION_EVENT_TYPES


def load_app() -> func.FunctionApp:
    import function_app

    return function_app.app


def test_the_app_indexes_the_way_the_worker_indexes_it():
    assert check_indexing(load_app()) == []


def test_functions_triggers_and_routes():
    functions = {f.get_function_name(): f for f in indexed_functions(load_app())}
    assert {name for name, f in functions.items() if f.get_trigger().get_binding_name() == "eventGridTrigger"} == set(
        FUNCTION_EVENT_TYPES
    )
    routes = {
        (f.get_trigger().route, tuple(sorted(http_methods(f.get_trigger()) or ())))
        for f in functions.values()
        if f.get_trigger().get_binding_name() == "httpTrigger"
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
    timer = functions["reconcile"].get_trigger()
    assert timer.get_binding_name() == "timerTrigger" and timer.schedule == "0 * * * * *"
    bindings = json.loads(functions["on_ml_event"].get_function_json())["bindings"]
    assert bindings == [{"type": "eventGridTrigger", "direction": "IN", "name": "event"}]


def test_importing_the_app_loads_no_heavy_library():
    code = (
        "import sys, function_app; "
        "heavy = [m for m in ('sklearn', 'pandas', 'scipy', 'azure.ai.ml', 'joblib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
