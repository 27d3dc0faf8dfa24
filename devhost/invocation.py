"""One indexed function as the local host holds it, and running it once the way Core Tools does.

Every trigger (HTTP route, Event Grid webhook, timer, admin API) ends in ``invoke``, which logs the
lines Core Tools prints (``Executing 'Functions.NAME' (Reason=..., Id=...)`` and ``Executed ...``
with the outcome and duration). The HTTP, Event Grid and timer modules import this one; it imports
none of them, so they share it without an import cycle.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from starlette.concurrency import run_in_threadpool

from devhost.indexing import function_name, trigger_of

logger = logging.getLogger("devhost.host")  # the invocation lines are the host's, as in Core Tools

HOST_API_REASON = "This function was programmatically called via the host APIs."


@dataclass(frozen=True)
class HostedFunction:
    """One indexed function: its name, trigger (azure.functions binding object) and user function."""

    name: str
    # Any: trigger-specific fields (route, methods, schedule, run_on_startup) are read by binding type,
    # as the host reads function.json, and azure.functions types get_trigger() as the base Trigger.
    trigger: Any
    user_function: Callable[..., Any]
    # Parameters only the real host could fill (other bindings, context): invoking such a function fails.
    unsupplied: tuple[str, ...]

    @classmethod
    def from_function(cls, function: func.Function) -> HostedFunction:
        trigger = trigger_of(function)
        user_function = function.get_user_function()
        parameters = inspect.signature(user_function).parameters
        unsupplied = tuple(name for name in parameters if name != trigger.name)
        return cls(function_name(function), trigger, user_function, unsupplied)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.type)

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


def failure_message(function: HostedFunction, exc: BaseException) -> str:
    """What the host answers when a function raised, in the Functions host's words."""
    return f"Exception while executing function: Functions.{function.name}. {type(exc).__name__}: {exc}"
