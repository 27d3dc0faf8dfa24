"""Check a FunctionApp the way the Azure Functions Python worker and host check it at indexing time.

The worker with the v2-model loader (``Registry.add_indexed_function`` in azure-functions-worker 4.x)
is not installable here: PyPI's ``azure-functions-worker`` only offers 1.x releases, and
``azure-functions-runtime`` is not available. So this module reimplements the same checks on
azure.functions' own metadata (the 1.x worker's ``Registry.add_function`` holds the same logic,
and the 4.x one was read from its source):

- every binding name except ``$return`` is a parameter of the user function and vice versa
  (a ``context`` parameter without a binding is allowed, if annotated, as ``azure.functions.Context``);
- no ``inout`` bindings; ``$return`` is an output binding;
- annotations agree with the binding direction (``azure.functions.Out[...]`` only for outputs) and
  with the binding type, decided by azure.functions' converters the way the worker decides it
  (``HttpRequest`` for httpTrigger, ``EventGridEvent``/``CloudEvent`` for eventGridTrigger,
  ``TimerRequest`` for timerTrigger, ``HttpResponse``/``str`` returned for http; ``str``/``bytes``
  parameters are accepted for any binding, as the worker's generic binding accepts them);
- function names are unique (``FunctionApp.get_functions()`` itself refuses duplicates).

Host-side checks added: HTTP routes must not clash for a shared method (the host compares routes
case-insensitively; here parameter names are ignored too, since ASP.NET would fail at request
time on ``items/{id}`` vs ``items/{key}``), routes must stay out of the host's ``admin``/``runtime``
space, and timer schedules must be valid NCRONTAB. A schedule may name app settings (``%NAME%``),
resolved from the environment as the host resolves them; an unset setting, or one whose value is not
valid NCRONTAB, is reported with the setting's and the function's names.
"""

from __future__ import annotations

import inspect
import os
import re
import typing
from collections.abc import Iterator

import azure.functions as func
from azure.functions._thirdparty import typing_inspect  # the helper the worker itself vendors
from azure.functions.decorators.core import BindingDirection

from devhost import ncrontab

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


def check_indexing(app: func.FunctionApp) -> list[str]:
    """Every problem the worker or host would refuse the app for; empty when it would index cleanly."""
    try:
        functions = indexed_functions(app)
    except ValueError as exc:  # no trigger or a duplicate name: azure.functions refuses to index at all
        return [str(exc)]
    problems: list[str] = []
    for function in functions:
        name = function_name(function)
        problems.extend(f"cannot load the {name} function: {problem}" for problem in _check_function(function))
    problems.extend(_check_schedules(functions))
    problems.extend(_check_routes(functions))
    return problems


def _check_function(function: func.Function) -> Iterator[str]:
    user_function = function.get_user_function()
    try:
        hints = typing.get_type_hints(user_function)
    except Exception as exc:  # e.g. a forward reference the module cannot resolve
        yield f"cannot resolve its type annotations: {exc!r}"
        return
    parameters = dict(inspect.signature(user_function).parameters)
    bound: dict[str, typing.Any] = {}
    return_type: str | None = None
    for binding in function.get_bindings():
        if binding.direction == BindingDirection.INOUT.value:
            yield f'binding {binding.name}: "inout" bindings are not supported'
        if binding.name == RETURN:
            if binding.direction != BindingDirection.OUT.value:
                yield '"$return" binding must have direction set to "out"'
            return_type = binding.type
        else:
            bound[binding.name] = binding

    if "context" in parameters and "context" not in bound:
        parameters.pop("context")
        context_type = hints.get("context", func.Context)
        if not (isinstance(context_type, type) and context_type.__name__ == "Context"):
            yield f'the "context" parameter is expected to be of type azure.functions.Context, got {context_type!r}'

    if python_only := sorted(parameters.keys() - bound.keys()):
        yield f"the following parameters are declared in Python but not in the bindings: {python_only}"
    if binding_only := sorted(bound.keys() - parameters.keys()):
        yield f"the following bindings are declared but are not parameters in Python: {binding_only}"
    for name in parameters.keys() & bound.keys():
        if name in hints:
            yield from _check_parameter(name, hints[name], bound[name])
    if return_type is not None and "return" in hints:
        yield from _check_return(hints["return"], return_type)


def _check_parameter(name: str, annotation: typing.Any, binding: typing.Any) -> Iterator[str]:
    is_out = _is_out(annotation)
    pytype = annotation
    if is_out:
        arguments = typing_inspect.get_args(annotation)
        if len(arguments) != 1:
            yield f"binding {name} has invalid Out annotation {annotation!r}"
            return
        pytype = arguments[0]
    if not isinstance(pytype, type) and not typing_inspect.is_generic_type(pytype):
        yield f"binding {name} has invalid non-type annotation {annotation!r}"
        return

    binding_is_out = binding.direction == BindingDirection.OUT.value
    if binding_is_out and not is_out:
        yield (
            f'binding {name} is declared to have the "out" direction, '
            "but its annotation in Python is not a subclass of azure.functions.Out"
        )
        return
    if is_out and not binding_is_out:
        yield f'binding {name} is declared to have the "in" direction, but its annotation is azure.functions.Out'
        return

    binding_type = _GENERIC if pytype in (str, bytes) else binding.type
    if not _annotation_fits(binding_type, pytype, output=is_out):
        yield f'type of {name} binding "{binding.type}" does not match its Python annotation "{_type_name(pytype)}"'


def _check_return(annotation: typing.Any, binding_type: str) -> Iterator[str]:
    if _is_out(annotation):
        yield "return annotation should not be azure.functions.Out"
    elif not isinstance(annotation, type):
        yield f"has invalid non-type return annotation {annotation!r}"
    elif not _annotation_fits(binding_type, annotation, output=True):
        yield f'Python return annotation "{annotation.__name__}" does not match binding type "{binding_type}"'


def _is_out(annotation: typing.Any) -> bool:
    origin = typing_inspect.get_origin(annotation) if typing_inspect.is_generic_type(annotation) else None
    candidate = origin if origin is not None else annotation
    return isinstance(candidate, type) and candidate.__name__ == "Out"


def _annotation_fits(binding_type: str, pytype: typing.Any, *, output: bool) -> bool:
    """Ask the binding's converter, as the worker does; unknown bindings get the worker's generic rule."""
    converter = func.get_binding_registry().get(binding_type)
    try:
        if converter is None or binding_type == _GENERIC:
            return issubclass(pytype, (str, bytes, bytearray) if output else (str, bytes))
        check = converter.check_output_type_annotation if output else converter.check_input_type_annotation
        return bool(check(pytype))
    except (TypeError, AttributeError):  # generic aliases fail issubclass; a converter may lack one direction
        return False


def _type_name(pytype: typing.Any) -> str:
    return getattr(pytype, "__name__", repr(pytype))


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
