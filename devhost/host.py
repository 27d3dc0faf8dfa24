"""A local stand-in for the Azure Functions host (what Core Tools' ``func start`` serves), for any FunctionApp.

Core Tools cannot be installed here, so ``mlops up`` serves the v2-model app with this module. Everything
comes from the app's own metadata (``FunctionApp.get_functions()``: names, trigger types, binding names,
routes, methods, schedules) and trigger arguments are built by azure.functions' own converters
(devhost/conversion.py), so the user functions receive the same objects the Python worker would give them.

Endpoints, as the Functions host exposes them:

- ``GET /``: the functions (name, trigger, route and methods, webhook or schedule) as JSON.
- ``/api/<route>``: HTTP-trigger functions. Route templates follow ASP.NET (devhost/routes.py); literal
  segments win over parameters. Wrong method: 405 with ``Allow``; no route: 404.
- ``POST /runtime/webhooks/eventgrid?functionName=NAME``: the Event Grid extension's webhook
  (devhost/eventgrid_webhook.py); ``OPTIONS`` answers the CloudEvents abuse-protection handshake.
- ``POST /admin/functions/NAME`` with ``{"input": ...}``: run a non-HTTP function once, like Core Tools
  (202 at once, the run follows).

Timer functions fire on their NCRONTAB schedule in UTC while the app runs (Starlette lifespan;
devhost/timers.py). Every invocation is logged the way Core Tools logs it (devhost/invocation.py).
Only requests for the host's own name are answered, and a state change from another site (its
``Origin``) is refused: 403 before any function runs (devhost/site_guard.py). Errors are JSON
``{"error": "..."}``. Bindings other than the trigger and an HTTP ``$return`` (queue outputs, blob
inputs, a ``context`` parameter) are not supplied: such functions fail when invoked, saying so.
The app is checked as the worker indexes it (devhost/indexing.py) before anything is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
import uvicorn
from azure.functions.decorators.http import HttpMethod
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devhost.conversion import (
    BodyTooLarge,
    admin_argument,
    error_response,
    read_body,
    to_http_request,
    to_starlette_response,
)
from devhost.eventgrid_webhook import EVENT_GRID_WEBHOOK, EventGridWebhook, webhook_url
from devhost.indexing import (
    EVENT_GRID_TRIGGER,
    HTTP_TRIGGER,
    TIMER_TRIGGER,
    check_indexing,
    http_methods,
    indexed_functions,
    timer_schedule,
)
from devhost.invocation import HOST_API_REASON, HostedFunction, failure_message, invoke
from devhost.routes import RouteTemplate
from devhost.site_guard import SameSiteGuard, checked_authorities, loopback_authorities
from devhost.timers import TimerSchedule, run_timer
from functions.domain.input_limits import MAX_WEBHOOK_BODY_BYTES

logger = logging.getLogger("devhost.host")

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 7071
_ALL_METHODS = [method.value for method in HttpMethod]


@dataclass(frozen=True)
class HttpEndpoint:
    function: HostedFunction
    route: RouteTemplate
    methods: frozenset[str] | None  # None: every method

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


class _Host:
    """Request handlers and timer tasks over the indexed functions."""

    def __init__(self, functions: list[HostedFunction], dead_letters: Path | None = None) -> None:
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
        self.eventgrid = EventGridWebhook(functions, dead_letters)

    def describe(self) -> list[dict[str, Any]]:
        return [self._describe(function) for function in self.functions]

    def _describe(self, function: HostedFunction) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": function.name, "trigger": function.trigger_type}
        if function.trigger_type == HTTP_TRIGGER:
            methods = http_methods(function.trigger)
            entry |= {"route": f"/api/{function.trigger.route.strip('/')}", "methods": sorted(methods or _ALL_METHODS)}
        elif function.trigger_type == EVENT_GRID_TRIGGER:
            entry["webhook"] = webhook_url(function.name)
        elif function.trigger_type == TIMER_TRIGGER:
            entry |= {
                "schedule": timer_schedule(function.trigger),
                "runOnStartup": bool(function.trigger.run_on_startup),
            }
        return entry

    @contextlib.asynccontextmanager
    async def run_timers(self, _: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run_timer(timer), name=f"timer {timer.function.name}") for timer in self.timers]
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
            return error_response(404, f"no function serves /api{path}")
        chosen = next(((endpoint, params) for endpoint, params in matches if endpoint.allows(request.method)), None)
        if chosen is None:
            allowed = sorted(set().union(*(endpoint.methods or _ALL_METHODS for endpoint, _ in matches)))
            return error_response(405, f"{request.method} is not allowed on /api{path}", {"Allow": ", ".join(allowed)})
        endpoint, params = chosen
        try:
            body = await read_body(request)
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        http_request = to_http_request(request, params, body)
        try:
            return await invoke(endpoint.function, http_request, HOST_API_REASON, to_starlette_response)
        except Exception as exc:
            return error_response(500, failure_message(endpoint.function, exc))

    async def admin_invoke(self, request: Request) -> Response:
        name = request.path_params["name"]
        function = self.by_name.get(name.lower())
        if function is None:
            return error_response(404, f"no function named {name!r}")
        if function.trigger_type == HTTP_TRIGGER:
            route = function.trigger.route.strip("/")
            return error_response(400, f"{function.name} is an HTTP function: call /api/{route}")
        try:
            payload = json.loads(await read_body(request, MAX_WEBHOOK_BODY_BYTES) or b"{}")
            if not isinstance(payload, dict):
                raise ValueError('the body must be a JSON object like {"input": ...}')
            argument = admin_argument(function.trigger_type, payload.get("input"))
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        except RecursionError:
            return error_response(400, "the body is nested too deeply to read")
        except (ValueError, TypeError) as exc:  # the converters' words for an input that is not an event
            return error_response(400, f"cannot build the trigger argument: {exc}")
        # The host answers 202 at once and runs the function afterwards.
        return Response(status_code=202, background=BackgroundTask(_invoke_logged, function, argument))


async def _invoke_logged(function: HostedFunction, argument: Any) -> None:
    with contextlib.suppress(Exception):  # invoke() logged it; the caller already has its 202
        await invoke(function, argument, HOST_API_REASON)


# Starlette types every handler as taking Exception; each narrows to what it is registered for.
async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    return error_response(500, f"{type(exc).__name__}: {exc}")


# --- Public API ---------------------------------------------------------------------------------------


def build_host(
    app: func.FunctionApp,
    *,
    run_timers: bool = True,
    allowed_authorities: Iterable[str] | None = None,
    dead_letters: Path | None = None,
) -> Starlette:
    """A Starlette app serving ``app`` like the Functions host; timers run while it runs if ``run_timers``.

    Events the Event Grid webhook cannot hand to the worker are appended to ``dead_letters`` (JSON lines).

    It answers only requests whose Host is one of ``allowed_authorities`` (``host:port``; default: what
    ``serve()`` binds by default, 127.0.0.1:7071 and localhost:7071) and refuses state changes from
    another site's Origin (devhost/site_guard.py). Raises ValueError listing the problems when the worker
    would refuse to index the app.
    """
    if problems := check_indexing(app):
        raise ValueError("the function app does not index:\n" + "\n".join(problems))
    host = _Host([HostedFunction.from_function(function) for function in indexed_functions(app)], dead_letters)
    routes = [
        Route("/", host.index, methods=["GET"]),
        Route("/api/{path:path}", host.http, methods=_ALL_METHODS),
        Route(EVENT_GRID_WEBHOOK, host.eventgrid.handle, methods=["POST", "OPTIONS"]),
        Route("/admin/functions/{name}", host.admin_invoke, methods=["POST"]),
    ]
    if allowed_authorities is None:
        allowed_authorities = loopback_authorities(DEFAULT_PORT)
    authorities = checked_authorities(allowed_authorities)  # an empty list is an error, not the default
    starlette = Starlette(
        routes=routes,
        middleware=[Middleware(SameSiteGuard, allowed_authorities=authorities)],
        lifespan=host.run_timers if run_timers else None,
        exception_handlers={HTTPException: _http_exception, Exception: _unhandled},
    )
    starlette.state.functions = host.describe()
    return starlette


def serve(
    app: func.FunctionApp,
    host: str = LOOPBACK,
    port: int = DEFAULT_PORT,
    run_timers: bool = True,
    dead_letters: Path | None = None,
) -> None:
    """Serve ``app`` on http://127.0.0.1:port until interrupted; only the loopback address is allowed,
    and only requests to 127.0.0.1:port or localhost:port (no other site's state changes) are answered."""
    if host != LOOPBACK:
        raise ValueError(f"the local host only binds {LOOPBACK}, not {host!r}")
    authorities = loopback_authorities(port)
    starlette = build_host(app, run_timers=run_timers, allowed_authorities=authorities, dead_letters=dead_letters)
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
    """The one FunctionApp of a module (imported from the current directory) or of a .py file or app folder.

    Like the worker's loader, it refuses a module with no top-level function app or with more than one
    (a Blueprint counts too: both are FunctionRegister), in the worker's words.
    """
    module = _import_app_module(path_or_module)
    registers = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    problem = ""
    if len(registers) > 1:
        kind = type(registers[0]).__name__
        problem = f"More than one {kind} or other top level function app instances are defined."
    elif not registers or not isinstance(registers[0], func.FunctionApp):
        problem = f"{path_or_module!r} defines no azure.functions.FunctionApp"
    if problem or not isinstance(app := registers[0], func.FunctionApp):
        if sys.modules.get(module.__name__) is module:
            del sys.modules[module.__name__]  # a refused app must not stand in for the module name later
        raise ValueError(problem)
    return app


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
