"""Check a FunctionApp the way Azure would at indexing time: the worker's loader, then the host's checks.

The worker's part (binding names against parameters, annotations against binding types and
directions, "$return" rules) is the real worker's loader, run through devhost.worker. What the
worker does not check and the Functions host does is checked here:

- HTTP routes must not clash for a shared method (the host compares routes case-insensitively; here
  parameter names are ignored too, since ASP.NET would fail at request time on ``items/{id}`` vs
  ``items/{key}``), and routes must stay out of the host's ``admin``/``runtime`` space;
- timer schedules must be valid NCRONTAB. A schedule may name app settings (``%NAME%``), resolved
  from the environment as the host resolves them; an unset setting, or one whose value is not valid
  NCRONTAB, is reported with the setting's and the function's names.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func

from devhost.worker import WorkerUnavailable, worker_problems
from functions.domain import ncrontab

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
RETURN = "$return"
_GENERIC = "generic"
_APP_SETTING = re.compile(r"%([^%]+)%")
_ROUTE_PARAMETER = re.compile(r"\{\*{0,2}[^{}:?=]+")


def indexed_functions(app: func.FunctionApp) -> list[func.Function]:
    """``app.get_functions()``, safe to call more than once.

    get_functions() remembers the names it has seen in ``app.functions_bindings`` and reports every
    function as a duplicate on a second call; resetting it lets the checker and the host both index.
    """
    app.functions_bindings = None
    return app.get_functions()


def function_name(function: func.Function) -> str:
    name = function.get_function_name()
    if not name:  # azure.functions falls back to the Python name, so only a broken Function gets here
        raise ValueError(f"a function of the app has no name: {function!r}")
    return name


def trigger_of(function: func.Function) -> typing.Any:
    """The function's trigger binding.

    Typed Any on purpose: the host reads trigger-specific fields (``route``, ``methods``, ``schedule``,
    ``run_on_startup``) by binding type, as it reads function.json, and get_trigger() is typed as the base class.
    """
    trigger = function.get_trigger()
    if trigger is None:  # get_functions() refuses such an app; this keeps a direct caller honest too
        raise ValueError(f"function {function_name(function)} has no trigger")
    return trigger


def timer_schedule(trigger: typing.Any) -> str:
    """The timer trigger's schedule with ``%SETTING%`` references resolved from the environment, as the host does."""

    def setting(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise ValueError(
                f"its timer schedule {trigger.schedule!r} names app setting {name!r}, which is not set; "
                f"set {name} in the environment the host runs in (on Azure: an app setting of the Function App)"
            )
        return os.environ[name]

    return _APP_SETTING.sub(setting, trigger.schedule)


def checked_timer_schedule(trigger: typing.Any) -> str:
    """``timer_schedule``, validated as NCRONTAB; a bad value from an app setting names the setting."""
    schedule = timer_schedule(trigger)
    try:
        ncrontab.validate(schedule)
    except ValueError as exc:
        settings = _APP_SETTING.findall(trigger.schedule)
        if not settings:
            raise
        named = " and ".join(f"app setting {name!r}" for name in settings)
        raise ValueError(
            f"its timer schedule {trigger.schedule!r} comes from {named}, which is not valid: {exc}"
        ) from exc
    return schedule


def check_indexing(app: func.FunctionApp, directory: Path | None = None) -> list[str]:
    """Every problem the worker or host would refuse the app for; empty when it would index cleanly.

    The worker's part is the worker's own loader (devhost.worker); the host's part is checked here.
    """
    try:
        functions = indexed_functions(app)
    except ValueError as exc:  # no trigger or a duplicate name: azure.functions refuses to index at all
        return [str(exc)]
    try:
        problems = worker_problems(functions, directory or Path.cwd())
    except WorkerUnavailable as exc:
        return [str(exc)]
    problems.extend(_check_schedules(functions))
    problems.extend(_check_routes(functions))
    return problems


def _check_schedules(functions: list[func.Function]) -> Iterator[str]:
    for function in functions:
        trigger = trigger_of(function)
        if trigger.type == TIMER_TRIGGER:
            try:
                checked_timer_schedule(trigger)
            except ValueError as exc:
                yield f"cannot load the {function_name(function)} function: {exc}"


def _check_routes(functions: list[func.Function]) -> Iterator[str]:
    seen: list[tuple[str, str, frozenset[str] | None]] = []
    for function in functions:
        trigger = trigger_of(function)
        if trigger.type != HTTP_TRIGGER:
            continue
        name = function_name(function)
        route = trigger.route.strip("/").lower()
        if route.startswith(("admin", "runtime")):
            yield f"{name}: the route {trigger.route!r} conflicts with one or more built in routes"
        methods = http_methods(trigger)
        shape = _ROUTE_PARAMETER.sub("{", route)
        for other_name, other_shape, other_methods in seen:
            if shape == other_shape and (methods is None or other_methods is None or methods & other_methods):
                yield f"{name}: the route {trigger.route!r} conflicts with the route defined by function {other_name!r}"
        seen.append((name, shape, methods))


def http_methods(trigger: typing.Any) -> frozenset[str] | None:
    """Upper-case method names of an HTTP trigger; None means every method."""
    methods = getattr(trigger, "methods", None)
    if not methods:
        return None
    return frozenset(str(getattr(method, "value", method)).upper() for method in methods)
