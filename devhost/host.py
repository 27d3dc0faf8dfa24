"""A local stand-in for the Azure Functions host (what Core Tools' ``func start`` serves), for any FunctionApp.

Core Tools cannot be installed here, so ``mlops up`` serves the v2-model app with this module. Everything
comes from the app's own metadata (``FunctionApp.get_functions()``: names, trigger types, binding names,
routes, methods, schedules) and trigger arguments are built by azure.functions' own converters, so the
user functions receive the same objects the Python worker would give them.

Endpoints, as the Functions host exposes them:

- ``GET /``: the functions (name, trigger, route and methods, webhook or schedule) as JSON.
- ``/api/<route>``: HTTP-trigger functions. Route templates follow ASP.NET: ``{name}``, constraints
  (``{id:int}``, ``{id:int:min(1)}``), optional ``{id?}``, defaults ``{id=1}``, catch-all ``{*rest}``;
  literal segments win over parameters. Wrong method: 405; no route: 404.
- ``POST /runtime/webhooks/eventgrid?functionName=NAME``: the Event Grid extension's webhook, driven by
  the ``aeg-event-type`` header (SubscriptionValidation, Notification, Unsubscribe), for Event Grid and
  CloudEvents schema bodies; ``OPTIONS`` answers the CloudEvents abuse-protection handshake.
- ``POST /admin/functions/NAME`` with ``{"input": ...}``: run a non-HTTP function once, like Core Tools.

Timer functions fire on their NCRONTAB schedule in UTC while the app runs (Starlette lifespan). Every
invocation is logged the way Core Tools logs it (``Executing 'Functions.NAME' (Reason=..., Id=...)``).
Errors are JSON ``{"error": "..."}``. Bindings other than the trigger and an HTTP ``$return`` (queue
outputs, blob inputs, a ``context`` parameter) are not supplied: such functions fail when invoked, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import uvicorn
from azure.functions.decorators.http import HttpMethod
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.http import HttpRequestConverter, HttpResponseConverter
from azure.functions.meta import Datum
from azure.functions.timer import TimerRequestConverter
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devhost import ncrontab
from devhost.indexing import (
    HTTP_TRIGGER,
    TIMER_TRIGGER,
    check_indexing,
    http_methods,
    indexed_functions,
    timer_schedule,
)

logger = logging.getLogger("devhost.host")

LOOPBACK = "127.0.0.1"
EVENT_GRID_TRIGGER = "eventGridTrigger"
EVENT_GRID_WEBHOOK = "/runtime/webhooks/eventgrid"
# A run this much later than its scheduled time means an occurrence was missed: the host's IsPastDue.
PAST_DUE_TOLERANCE = timedelta(seconds=1)
HOST_API_REASON = "This function was programmatically called via the host APIs."
_ALL_METHODS = [method.value for method in HttpMethod]


# --- Route templates ----------------------------------------------------------------------------------

_PARAMETER = re.compile(r"\{([^{}]*)\}")
_CONSTRAINT = re.compile(r"(?P<name>\w+)(?:\((?P<args>[^()]*)\))?")
_INTEGER = re.compile(r"-?\d+")


def _is_int(value: str) -> bool:
    return _INTEGER.fullmatch(value) is not None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_TYPE_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _is_int,
    "long": _is_int,
    "bool": lambda value: value.lower() in ("true", "false"),
    "alpha": lambda value: value.isascii() and value.isalpha(),
    "guid": _is_guid,
    "decimal": _is_number,
    "double": _is_number,
    "float": _is_number,
    "datetime": _is_datetime,
}
_BOUNDED_CONSTRAINTS: dict[str, Callable[..., bool]] = {
    "min": lambda value, low: _is_int(value) and int(value) >= low,
    "max": lambda value, high: _is_int(value) and int(value) <= high,
    "range": lambda value, low, high: _is_int(value) and low <= int(value) <= high,
    "minlength": lambda value, low: len(value) >= low,
    "maxlength": lambda value, high: len(value) <= high,
    "length": lambda value, low, high=None: low <= len(value) <= (low if high is None else high),
}


@dataclass(frozen=True)
class _Parameter:
    name: str
    group: str
    checks: tuple[Callable[[str], bool], ...]
    default: str | None


@dataclass(frozen=True)
class RouteTemplate:
    """An HTTP trigger's route template compiled for matching request paths below ``/api``."""

    template: str
    pattern: re.Pattern[str]
    parameters: tuple[_Parameter, ...]
    # ASP.NET inbound precedence per segment: literal 1, mixed 2, constrained 3, parameter 4, catch-all 5.
    precedence: tuple[int, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        segments = [segment for segment in template.strip("/").split("/") if segment]
        regex: list[str] = []
        parameters: list[_Parameter] = []
        precedence: list[int] = []
        for index, segment in enumerate(segments):
            is_last = index == len(segments) - 1
            part, rank = _compile_segment(template, segment, parameters, is_last=is_last)
            regex.append(part)
            precedence.append(rank)
        pattern = re.compile("".join(regex), re.IGNORECASE)  # literals match case-insensitively, as in ASP.NET
        return cls(template, pattern, tuple(parameters), tuple(precedence))

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters when ``path`` (like ``/items/5``) fits the template, else None."""
        found = self.pattern.fullmatch(path.rstrip("/"))
        if found is None:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found[parameter.group]
            if not value:  # an optional or catch-all segment that is absent
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not all(check(value) for check in parameter.checks):
                return None
            values[parameter.name] = value
        return values


def _compile_segment(template: str, segment: str, parameters: list[_Parameter], *, is_last: bool) -> tuple[str, int]:
    pieces = _PARAMETER.split(segment)  # literal, parameter, literal, ...
    if len(pieces) == 1:
        if "{" in segment or "}" in segment:
            raise ValueError(f"route {template!r}: unbalanced braces in segment {segment!r}")
        return "/" + re.escape(segment), 1
    if len(pieces) == 3 and pieces[0] == pieces[2] == "":
        return _compile_parameter_segment(template, pieces[1], parameters, is_last=is_last)
    regex = "/"
    for position, piece in enumerate(pieces):
        if position % 2 == 0:
            regex += re.escape(piece)
            continue
        parameter, optional, catch_all = _parse_parameter(template, piece, f"p{len(parameters)}")
        if optional or catch_all:
            raise ValueError(f"route {template!r}: optional or catch-all parameters need a segment of their own")
        parameters.append(parameter)
        regex += f"(?P<{parameter.group}>[^/]+?)"
    return regex, 2


def _compile_parameter_segment(
    template: str, body: str, parameters: list[_Parameter], *, is_last: bool
) -> tuple[str, int]:
    parameter, optional, catch_all = _parse_parameter(template, body, f"p{len(parameters)}")
    parameters.append(parameter)
    group = parameter.group
    if catch_all or optional:
        if not is_last:
            raise ValueError(f"route {template!r}: {{{body}}} may only be the last segment")
        return (f"(?:/(?P<{group}>.*))?", 5) if catch_all else (f"(?:/(?P<{group}>[^/]+))?", 4)
    return f"/(?P<{group}>[^/]+)", 3 if parameter.checks else 4


def _parse_parameter(template: str, body: str, group: str) -> tuple[_Parameter, bool, bool]:
    """``name[:constraint...][?|=default]`` or ``*name``; returns the parameter, optional, catch-all."""
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default = None
    if "=" in body:
        body, default = body.split("=", 1)
    optional = body.endswith("?") or default is not None
    name, *constraints = body.rstrip("?").split(":")
    if not name:
        raise ValueError(f"route {template!r}: a parameter has no name")
    checks = tuple(_constraint_check(template, constraint) for constraint in constraints)
    return _Parameter(name, group, checks, default), optional, catch_all


def _constraint_check(template: str, constraint: str) -> Callable[[str], bool]:
    found = _CONSTRAINT.fullmatch(constraint)
    name = found["name"].lower() if found else constraint
    if found and found["args"] is None and name in _TYPE_CONSTRAINTS:
        return _TYPE_CONSTRAINTS[name]
    if found and found["args"] is not None and name in _BOUNDED_CONSTRAINTS:
        try:
            bounds = [int(arg) for arg in found["args"].split(",")]
            check = _BOUNDED_CONSTRAINTS[name]
            check("0", *bounds)  # wrong arity fails here, not at request time
        except (ValueError, TypeError) as exc:
            raise ValueError(f"route {template!r}: bad arguments in constraint {constraint!r}") from exc
        return lambda value: check(value, *bounds)
    raise ValueError(f"route {template!r}: route constraint {constraint!r} is not supported by the local host")


# --- Functions as the host sees them ------------------------------------------------------------------


@dataclass(frozen=True)
class HostedFunction:
    """One indexed function: its name, trigger (azure.functions binding object) and user function."""

    name: str
    trigger: Any
    user_function: Callable[..., Any]
    # Parameters only the real host could fill (other bindings, context): invoking such a function fails.
    unsupplied: tuple[str, ...]

    @classmethod
    def from_function(cls, function: func.Function) -> HostedFunction:
        trigger = function.get_trigger()
        user_function = function.get_user_function()
        parameters = inspect.signature(user_function).parameters
        unsupplied = tuple(name for name in parameters if name != trigger.name)
        return cls(function.get_function_name(), trigger, user_function, unsupplied)

    @property
    def trigger_type(self) -> str:
        return self.trigger.type

    async def call(self, argument: Any) -> Any:
        if self.unsupplied:
            raise RuntimeError(f"the local host cannot supply parameters {list(self.unsupplied)} of {self.name}")
        if inspect.iscoroutinefunction(self.user_function):
            return await self.user_function(**{self.trigger.name: argument})
        # A worker thread keeps the event loop free, so a function may call back into this host.
        return await run_in_threadpool(self.user_function, **{self.trigger.name: argument})


async def invoke(
    function: HostedFunction, argument: Any, reason: str, finish: Callable[[Any], Any] | None = None
) -> Any:
    """Run the function once with Core Tools' log lines; ``finish`` converts the result as part of the run."""
    invocation_id = uuid.uuid4()
    logger.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id)
    started = time.perf_counter()
    try:
        result = await function.call(argument)
        if finish is not None:
            result = finish(result)
    except Exception:
        elapsed = round((time.perf_counter() - started) * 1000)
        logger.exception(
            "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", function.name, invocation_id, elapsed
        )
        raise
    elapsed = round((time.perf_counter() - started) * 1000)
    logger.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", function.name, invocation_id, elapsed)
    return result


def _failure(function: HostedFunction, exc: BaseException) -> str:
    return f"Exception while executing function: Functions.{function.name}. {type(exc).__name__}: {exc}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- HTTP triggers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpEndpoint:
    function: HostedFunction
    route: RouteTemplate
    methods: frozenset[str] | None  # None: every method

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def _to_http_request(request: Request, route_params: dict[str, str], body: bytes) -> func.HttpRequest:
    """The worker's HttpRequest, built by azure.functions' converter from the host's 'http' datum."""

    def text(value: str) -> Datum:
        return Datum(value, "string")

    headers = {name: ", ".join(request.headers.getlist(name)) for name in request.headers}
    datum = Datum(
        {
            "method": text(request.method),
            "url": text(str(request.url)),
            "headers": {name: text(value) for name, value in headers.items()},
            "query": {name: text(value) for name, value in request.query_params.items()},
            "params": {name: text(value) for name, value in route_params.items()},
            "body": Datum(body, "bytes"),
        },
        "http",
    )
    return HttpRequestConverter.decode(datum, trigger_metadata={})


def _to_starlette_response(result: Any) -> Response:
    """Encode the return value with azure.functions' http converter (as the worker does), then serve it."""
    try:
        datum = HttpResponseConverter.encode(result, expected_type=None)
    except NotImplementedError:
        raise TypeError(
            f"an HTTP function must return azure.functions.HttpResponse or str, not {type(result).__name__}"
        ) from None
    if datum.type == "string":
        return Response(datum.value, media_type="text/plain")
    value = datum.value
    headers = {name: header.value for name, header in value["headers"].items()}
    response = Response(value["body"].value, status_code=int(value["status_code"].value), headers=headers)
    for cookie in value["cookies"] or []:
        for morsel in cookie.values():
            response.headers.append("set-cookie", morsel.OutputString())
    return response


# --- Timers -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerSchedule:
    function: HostedFunction
    schedule: str
    run_on_startup: bool


def is_past_due(due: datetime, fired_at: datetime) -> bool:
    return fired_at - due > PAST_DUE_TOLERANCE


def following_occurrence(schedule: str, due: datetime, fired_at: datetime) -> datetime:
    """The occurrence after the one due at ``due`` and run at ``fired_at``.

    Occurrences missed by a late run are folded into it (the host runs a missed schedule once, past due).
    """
    anchor = fired_at if is_past_due(due, fired_at) else due
    return ncrontab.next_fire(schedule, anchor)


def _timer_request(past_due: bool, status: dict[str, datetime | None]) -> func.TimerRequest:
    """The TimerRequest the worker builds from the host's timer payload."""
    payload = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {key: moment.isoformat() for key, moment in status.items() if moment is not None},
        "IsPastDue": past_due,
    }
    return TimerRequestConverter.decode(Datum(json.dumps(payload), "json"), trigger_metadata={})


async def _fire(timer: TimerSchedule, past_due: bool, status: dict[str, datetime | None]) -> None:
    now = _utcnow()
    with contextlib.suppress(Exception):  # invoke() logged it; a failing run must not stop the schedule
        await invoke(timer.function, _timer_request(past_due, status), f"Timer fired at {now.isoformat()}")


async def _run_timer(timer: TimerSchedule) -> None:
    """Fire ``timer`` on schedule until cancelled.

    Like the host, a run sees the status saved by the previous one: Last is the previous occurrence,
    Next the occurrence now running, LastUpdated when the previous run finished (empty on the first run).
    """
    if timer.run_on_startup:
        await _fire(timer, False, {})
    due = ncrontab.next_fire(timer.schedule, _utcnow())
    status: dict[str, datetime | None] = {}
    while True:
        while (delay := (due - _utcnow()).total_seconds()) > 0:
            await asyncio.sleep(delay)
        fired_at = _utcnow()
        await _fire(timer, is_past_due(due, fired_at), status | {"Next": due})
        status = {"Last": due, "LastUpdated": _utcnow()}
        due = following_occurrence(timer.schedule, due, fired_at)


# --- The host -----------------------------------------------------------------------------------------


class _Host:
    """Request handlers and timer tasks over the indexed functions."""

    def __init__(self, functions: list[HostedFunction]) -> None:
        self.functions = functions
        self.by_name = {function.name.lower(): function for function in functions}
        endpoints = [
            HttpEndpoint(function, RouteTemplate.parse(function.trigger.route), http_methods(function.trigger))
            for function in functions
            if function.trigger_type == HTTP_TRIGGER
        ]
        self.endpoints = sorted(endpoints, key=lambda endpoint: endpoint.route.precedence)  # stable: ties keep order
        self.timers = [
            TimerSchedule(function, timer_schedule(function.trigger), bool(function.trigger.run_on_startup))
            for function in functions
            if function.trigger_type == TIMER_TRIGGER
        ]

    def describe(self) -> list[dict[str, Any]]:
        return [self._describe(function) for function in self.functions]

    def _describe(self, function: HostedFunction) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": function.name, "trigger": function.trigger_type}
        if function.trigger_type == HTTP_TRIGGER:
            methods = http_methods(function.trigger)
            entry |= {"route": f"/api/{function.trigger.route.strip('/')}", "methods": sorted(methods or _ALL_METHODS)}
        elif function.trigger_type == EVENT_GRID_TRIGGER:
            entry["webhook"] = f"{EVENT_GRID_WEBHOOK}?functionName={function.name}"
        elif function.trigger_type == TIMER_TRIGGER:
            entry |= {
                "schedule": timer_schedule(function.trigger),
                "runOnStartup": bool(function.trigger.run_on_startup),
            }
        return entry

    @contextlib.asynccontextmanager
    async def run_timers(self, _: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_run_timer(timer), name=f"timer {timer.function.name}") for timer in self.timers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def index(self, request: Request) -> Response:
        return JSONResponse({"functions": self.describe()})

    async def http(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        matches = [
            (endpoint, params) for endpoint in self.endpoints if (params := endpoint.route.match(path)) is not None
        ]
        if not matches:
            return _error(404, f"no function serves /api{path}")
        chosen = next(((endpoint, params) for endpoint, params in matches if endpoint.allows(request.method)), None)
        if chosen is None:
            allowed = sorted(set().union(*(endpoint.methods or _ALL_METHODS for endpoint, _ in matches)))
            return _error(405, f"{request.method} is not allowed on /api{path}", {"Allow": ", ".join(allowed)})
        endpoint, params = chosen
        http_request = _to_http_request(request, params, await request.body())
        try:
            return await invoke(endpoint.function, http_request, HOST_API_REASON, _to_starlette_response)
        except Exception as exc:
            return _error(500, _failure(endpoint.function, exc))

    async def eventgrid(self, request: Request) -> Response:
        name = request.query_params.get("functionName")
        function = self.by_name.get((name or "").lower())
        if function is not None and function.trigger_type != EVENT_GRID_TRIGGER:
            function = None
        if request.method == "OPTIONS" and (name is None or function is not None):
            return _abuse_protection_handshake(request)
        if function is None:
            known = [f.name for f in self.functions if f.trigger_type == EVENT_GRID_TRIGGER]
            return _error(404, f"cannot find Event Grid function {name!r}; Event Grid functions: {known}")
        event_type = request.headers.get("aeg-event-type", "")
        kind = event_type.lower()
        if kind == "unsubscribe":
            return Response(status_code=202)
        if kind not in ("subscriptionvalidation", "notification"):
            expected = "SubscriptionValidation, Notification or Unsubscribe"
            return _error(400, f"the aeg-event-type header must be {expected}, got {event_type!r}")
        try:
            events = _parse_events(await request.body())
        except ValueError as exc:
            return _error(400, str(exc))
        if kind == "subscriptionvalidation":
            return _validation_response(events)
        return await self._deliver(function, events)

    async def _deliver(self, function: HostedFunction, events: list[dict[str, Any]]) -> Response:
        failures = []
        for index, event in enumerate(events):
            try:
                argument = _decode_event(event)
                await invoke(function, argument, f"EventGrid trigger fired at {_utcnow().isoformat()}")
            except Exception as exc:
                failures.append(f"event {event.get('id', index)!r}: {type(exc).__name__}: {exc}")
        if failures:
            summary = f"{len(failures)} of {len(events)} events failed in Functions.{function.name}"
            return _error(500, f"{summary}: {'; '.join(failures)}")
        return Response(status_code=202)

    async def admin_invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        function = self.by_name.get(name.lower())
        if function is None:
            return _error(404, f"no function named {name!r}")
        if function.trigger_type == HTTP_TRIGGER:
            return _error(400, f"{function.name} is an HTTP function: call /api/{function.trigger.route.strip('/')}")
        try:
            payload = json.loads(await request.body() or b"{}")
            if not isinstance(payload, dict):
                raise ValueError('the body must be a JSON object like {"input": ...}')
            argument = self._admin_argument(function, payload.get("input"))
        except ValueError as exc:
            return _error(400, str(exc))
        # The host answers 202 at once and runs the function afterwards.
        return Response(status_code=202, background=BackgroundTask(self._invoke_logged, function, argument))

    def _admin_argument(self, function: HostedFunction, given: Any) -> Any:
        if function.trigger_type == TIMER_TRIGGER:
            return _timer_request(False, {})
        if function.trigger_type == EVENT_GRID_TRIGGER:
            event = json.loads(given) if isinstance(given, str) else given
            if not isinstance(event, dict):
                raise ValueError("input for an Event Grid function must be an event object (or its JSON text)")
            return _decode_event(event)
        converter = func.get_binding_registry().get(function.trigger_type)
        if converter is None:
            return given
        datum = Datum(given, "string") if isinstance(given, str) else Datum(json.dumps(given), "json")
        try:
            return converter.decode(datum, trigger_metadata={})
        except Exception as exc:
            raise ValueError(f"cannot build a {function.trigger_type} argument from the input: {exc!r}") from exc

    async def _invoke_logged(self, function: HostedFunction, argument: Any) -> None:
        with contextlib.suppress(Exception):  # invoke() logged it; the caller already has its 202
            await invoke(function, argument, HOST_API_REASON)


def _parse_events(body: bytes) -> list[dict[str, Any]]:
    """One event object (CloudEvents) or an array of them (Event Grid schema)."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("the request body is not JSON") from None
    events = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(event, dict) for event in events):
        raise ValueError("the request body must be an event object or a JSON array of event objects")
    return events


def _decode_event(event: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    return EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={})


def _validation_response(events: list[dict[str, Any]]) -> Response:
    data = events[0].get("data") if events else None
    code = data.get("validationCode") if isinstance(data, dict) else None
    if code is None:
        return _error(400, "SubscriptionValidation needs data.validationCode in the first event")
    return JSONResponse({"validationResponse": code})


def _abuse_protection_handshake(request: Request) -> Response:
    """CloudEvents 1.0 webhook validation: echo the origin, allow any rate."""
    origin = request.headers.get("webhook-request-origin")
    if not origin:
        return _error(400, "OPTIONS needs a WebHook-Request-Origin header (CloudEvents abuse protection)")
    return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    return _error(exc.status_code, exc.detail, exc.headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    return _error(500, f"{type(exc).__name__}: {exc}")


# --- Public API ---------------------------------------------------------------------------------------


def build_host(app: func.FunctionApp, *, run_timers: bool = True) -> Starlette:
    """A Starlette app serving ``app`` like the Functions host; timers run while it runs if ``run_timers``.

    Raises ValueError listing the problems when the worker would refuse to index the app.
    """
    if problems := check_indexing(app):
        raise ValueError("the function app does not index:\n" + "\n".join(problems))
    host = _Host([HostedFunction.from_function(function) for function in indexed_functions(app)])
    routes = [
        Route("/", host.index, methods=["GET"]),
        Route("/api/{path:path}", host.http, methods=_ALL_METHODS),
        Route(EVENT_GRID_WEBHOOK, host.eventgrid, methods=["POST", "OPTIONS"]),
        Route("/admin/functions/{name}", host.admin_invoke, methods=["POST"]),
    ]
    starlette = Starlette(
        routes=routes,
        lifespan=host.run_timers if run_timers else None,
        exception_handlers={HTTPException: _http_exception, Exception: _unhandled},
    )
    starlette.state.functions = host.describe()
    return starlette


def serve(app: func.FunctionApp, host: str = LOOPBACK, port: int = 7071, run_timers: bool = True) -> None:
    """Serve ``app`` on http://127.0.0.1:port until interrupted; only the loopback address is allowed."""
    if host != LOOPBACK:
        raise ValueError(f"the local host only binds {LOOPBACK}, not {host!r}")
    starlette = build_host(app, run_timers=run_timers)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")  # no-op if logging is configured
    for line in _function_lines(starlette.state.functions, f"http://{host}:{port}"):
        logger.info(line)
    uvicorn.run(starlette, host=host, port=port, log_level="info")


def _function_lines(functions: list[dict[str, Any]], base_url: str) -> Iterator[str]:
    """The 'Functions:' block Core Tools prints at start."""
    yield "Functions:"
    for entry in functions:
        if "route" in entry:
            yield f"    {entry['name']}: [{','.join(entry['methods'])}] {base_url}{entry['route']}"
        else:
            yield f"    {entry['name']}: {entry['trigger']}"


def load_function_app(path_or_module: str = "function_app") -> func.FunctionApp:
    """The FunctionApp of a module (imported from the current directory) or of a .py file or app folder.

    Returns the module's ``app`` attribute if it is a FunctionApp, else the first FunctionApp defined in it.
    """
    module = _import_app_module(path_or_module)
    candidate = getattr(module, "app", None)
    if isinstance(candidate, func.FunctionApp):
        return candidate
    for value in vars(module).values():
        if isinstance(value, func.FunctionApp):
            return value
    raise ValueError(f"{path_or_module!r} defines no azure.functions.FunctionApp")


def _import_app_module(path_or_module: str) -> ModuleType:
    path = Path(path_or_module)
    if path.is_dir():
        path = path / "function_app.py"
    if path.suffix != ".py":
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(path_or_module)
    path = path.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no function app at {path}")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # as the worker does, so the app's sibling packages import
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[path.stem]
        raise
    return module
