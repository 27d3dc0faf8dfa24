"""check_indexing: the worker's and host's indexing checks on a FunctionApp's metadata."""

from __future__ import annotations

import azure.functions as func
import pytest

from devhost.indexing import check_indexing, indexed_functions, timer_schedule
from devhost.settings import LOCAL_APP_SETTING_DEFAULTS
from functions.settings import DEFAULT_RECONCILE_SCHEDULE, RECONCILE_SCHEDULE_SETTING
from tests.fixtures import sample_function_app as sample


def _app() -> func.FunctionApp:
    return func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _only_problem(app: func.FunctionApp) -> str:
    problems = check_indexing(app)
    assert len(problems) == 1, problems
    return problems[0]


def test_sample_app_indexes_cleanly_and_repeatedly() -> None:
    assert check_indexing(sample.app) == []
    # FunctionApp.get_functions() alone refuses a second call (every name looks like a duplicate).
    assert check_indexing(sample.app) == []
    assert len(indexed_functions(sample.app)) == len(indexed_functions(sample.app))


def test_binding_name_must_match_a_parameter() -> None:
    app = _app()

    @app.route(route="items", trigger_arg_name="request")
    def list_items(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    problems = check_indexing(app)

    # The worker's own words (it reports the first mismatch it finds).
    assert problems == [
        "cannot load the list_items function: the following parameters are declared in Python "
        "but not in the function definition (function.json or function decorators):  {'req'}",
    ]


def test_every_parameter_needs_a_binding() -> None:
    app = _app()

    @app.event_grid_trigger(arg_name="event")
    def on_event(event: func.EventGridEvent, settings: dict) -> None: ...

    assert (
        "declared in Python but not in the function definition (function.json or function decorators):  {'settings'}"
        in (_only_problem(app))
    )


@pytest.mark.parametrize(
    ("decorate", "annotation", "binding_type"),
    [
        (lambda app: app.event_grid_trigger(arg_name="arg"), func.HttpRequest, "eventGridTrigger"),
        (lambda app: app.route(route="x", trigger_arg_name="arg"), func.TimerRequest, "httpTrigger"),
        (lambda app: app.timer_trigger(arg_name="arg", schedule="0 0 * * * *"), func.EventGridEvent, "timerTrigger"),
        (lambda app: app.event_grid_trigger(arg_name="arg"), dict, "eventGridTrigger"),
    ],
)
def test_parameter_annotation_must_fit_the_binding_type(decorate, annotation: type, binding_type: str) -> None:
    app = _app()

    def handler(arg):  # annotated below so the parametrized type is used
        return None

    handler.__annotations__ = {"arg": annotation}
    decorate(app)(handler)

    assert _only_problem(app) == (
        f'cannot load the handler function: binding type "\'arg\'" and dataType "{binding_type}" in the binding '
        f"decorator do not match the corresponding function parameter's Python type annotation {annotation.__name__}"
    )


def test_http_return_annotation_must_be_http_response_or_str() -> None:
    app = _app()

    @app.route(route="ok")
    def fine(req: func.HttpRequest) -> str:
        return "ok"

    @app.route(route="bad")
    def returns_dict(req: func.HttpRequest) -> dict:
        return {}

    assert _only_problem(app) == (
        'cannot load the returns_dict function: Python return annotation "dict" does not match binding type "http"'
    )


def test_accepted_alternatives_like_the_worker() -> None:
    app = _app()

    @app.event_grid_trigger(arg_name="event")
    def cloud(event: func.CloudEvent) -> None: ...

    @app.event_grid_trigger(arg_name="event")
    def raw(event: str) -> None: ...  # str/bytes go through the worker's generic binding

    @app.event_grid_trigger(arg_name="event")
    def unannotated(event, context: func.Context) -> None: ...

    @app.queue_output(arg_name="message", queue_name="releases", connection="Storage")
    @app.route(route="enqueue")
    def enqueue(req: func.HttpRequest, message: func.Out[str]) -> func.HttpResponse:
        return func.HttpResponse("")

    assert check_indexing(app) == []


def test_output_and_input_directions_must_match_out_annotations() -> None:
    app = _app()

    @app.queue_output(arg_name="message", queue_name="releases", connection="Storage")
    @app.route(route="enqueue")
    def enqueue(req: func.HttpRequest, message: str) -> func.HttpResponse:
        return func.HttpResponse("")

    @app.event_grid_trigger(arg_name="event")
    def backwards(event: func.Out[func.EventGridEvent]) -> None: ...

    problems = check_indexing(app)

    assert len(problems) == 2
    assert 'binding message is declared to have the "out" direction' in problems[0]
    assert 'binding event is declared to have the "in" direction' in problems[1]


def test_context_parameter_must_be_a_context() -> None:
    app = _app()

    @app.event_grid_trigger(arg_name="event")
    def on_event(event: func.EventGridEvent, context: dict) -> None: ...

    assert 'the "context" parameter is expected to be of type azure.functions.Context' in _only_problem(app)


def test_non_type_and_unresolvable_annotations_are_reported() -> None:
    app = _app()

    @app.event_grid_trigger(arg_name="event")
    def optional(event: func.EventGridEvent | None) -> None: ...

    def dangling(event) -> None: ...

    dangling.__annotations__["event"] = "NoSuchType"  # a name the module cannot resolve, set as the text it is
    app.event_grid_trigger(arg_name="event")(dangling)

    problems = check_indexing(app)

    assert "cannot load the optional function: binding event has invalid non-type annotation" in problems[0]
    assert "cannot load the dangling function: NameError" in problems[1]
    assert "NoSuchType" in problems[1]


def test_duplicate_function_names_stop_indexing() -> None:
    app = _app()

    @app.function_name("Approve")
    @app.route(route="a")
    def first(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    @app.function_name("Approve")
    @app.route(route="b")
    def second(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    assert "Function Approve does not have a unique function name" in _only_problem(app)


def test_routes_must_be_unique_per_method() -> None:
    app = _app()

    @app.route(route="items/{id}", methods=["GET"])
    def get_item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    @app.route(route="items/{id}", methods=["DELETE"])
    def delete_item(req: func.HttpRequest) -> func.HttpResponse:  # same route, other method: fine
        return func.HttpResponse("")

    @app.route(route="/Items/{key}/", methods=["GET", "PUT"])
    def clash(req: func.HttpRequest) -> func.HttpResponse:  # same shape, case and slashes aside
        return func.HttpResponse("")

    @app.route(route="items/{id}")
    def any_method(req: func.HttpRequest) -> func.HttpResponse:  # no methods: clashes with every one
        return func.HttpResponse("")

    problems = check_indexing(app)

    assert problems == [
        "clash: the route '/Items/{key}/' conflicts with the route defined by function 'get_item'",
        "any_method: the route 'items/{id}' conflicts with the route defined by function 'get_item'",
        "any_method: the route 'items/{id}' conflicts with the route defined by function 'delete_item'",
        "any_method: the route 'items/{id}' conflicts with the route defined by function 'clash'",
    ]


def test_routes_may_not_use_the_host_reserved_space() -> None:
    app = _app()

    @app.route(route="admin/reset")
    def reset(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    assert _only_problem(app) == "reset: the route 'admin/reset' conflicts with one or more built in routes"


def test_timer_schedules_must_be_six_field_ncrontab() -> None:
    app = _app()

    @app.timer_trigger(arg_name="timer", schedule="*/5 * * * *")
    def nightly(timer: func.TimerRequest) -> None: ...

    problem = _only_problem(app)
    assert problem.startswith("cannot load the nightly function: NCRONTAB expression '*/5 * * * *' has 5 fields")


def test_timer_schedule_app_settings_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app()

    @app.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%")
    def retrain(timer: func.TimerRequest) -> None: ...

    assert "app setting 'RETRAIN_SCHEDULE', which is not set" in _only_problem(app)

    monkeypatch.setenv("RETRAIN_SCHEDULE", "0 0 3 * * *")
    assert check_indexing(app) == []
    assert timer_schedule(indexed_functions(app)[0].get_trigger()) == "0 0 3 * * *"


def test_an_unset_schedule_setting_is_named_with_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAIN_SCHEDULE", raising=False)
    app = _app()

    @app.timer_trigger(arg_name="timer", schedule="%RETRAIN_SCHEDULE%")
    def retrain(timer: func.TimerRequest) -> None: ...

    assert _only_problem(app) == (
        "cannot load the retrain function: its timer schedule '%RETRAIN_SCHEDULE%' names app setting "
        "'RETRAIN_SCHEDULE', which is not set; set RETRAIN_SCHEDULE in the environment the host runs in "
        "(on Azure: an app setting of the Function App)"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [("*/5 * * * *", "has 5 fields"), ("0 0 0 30 2 *", "never fires"), ("", "has 0 fields")],
)
def test_a_schedule_setting_that_is_not_ncrontab_is_named(
    monkeypatch: pytest.MonkeyPatch, value: str, reason: str
) -> None:
    monkeypatch.setenv(RECONCILE_SCHEDULE_SETTING, value)
    app = _app()

    @app.timer_trigger(arg_name="timer", schedule=f"%{RECONCILE_SCHEDULE_SETTING}%")
    def reconcile(timer: func.TimerRequest) -> None: ...

    problem = _only_problem(app)
    assert problem.startswith(
        "cannot load the reconcile function: its timer schedule '%MLOPS_RECONCILE_SCHEDULE%' comes from "
        "app setting 'MLOPS_RECONCILE_SCHEDULE', which is not valid: NCRONTAB expression"
    )
    assert repr(value) in problem and reason in problem


def test_the_default_reconcile_schedule_is_valid_ncrontab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RECONCILE_SCHEDULE_SETTING, LOCAL_APP_SETTING_DEFAULTS[RECONCILE_SCHEDULE_SETTING])
    app = _app()

    @app.timer_trigger(arg_name="timer", schedule=f"%{RECONCILE_SCHEDULE_SETTING}%")
    def reconcile(timer: func.TimerRequest) -> None: ...

    assert check_indexing(app) == []
    assert timer_schedule(indexed_functions(app)[0].get_trigger()) == DEFAULT_RECONCILE_SCHEDULE
