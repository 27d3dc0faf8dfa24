"""The service as one object, for scripts, tools and tests: one line per call, over a Context.

The entry points do not go through it: each calls the module that does the job with the Context
bootstrap built (events -> delivery -> HANDLERS, people -> commands, the timers -> reconcile,
background and following), so function_app.py reaches every handler in two hops. This class bundles the same calls.
"""

from __future__ import annotations

from typing import Any

from functions.domain.approval import ApprovalPolicy, Principal
from functions.domain.data_trigger import DataTrigger
from functions.domain.gate import GatePolicy
from functions.domain.refs import DeadLetter
from functions.domain.release import Release
from functions.domain.rollout import RolloutPolicy
from functions.ports import Clock, LinkBuilder
from functions.service import commands, delivery
from functions.service.context import Context, Ports, Timeouts, utc_now
from functions.service.following import follow_all
from functions.service.reconcile import timer_pass
from functions.service.results import Outcome


class Orchestrator:
    def __init__(
        self,
        ports: Ports,
        *,
        links: LinkBuilder,
        policy: GatePolicy | None = None,
        approval_policy: ApprovalPolicy | None = None,
        timeouts: Timeouts | None = None,
        rollout_policy: RolloutPolicy | None = None,
        promote_inline: bool = True,
        clock: Clock = utc_now,
        trust_published_requester: bool = True,
        retrain_schedule: str = "",
        trust_generic_requester: bool = False,
        data_trigger: DataTrigger | None = None,
    ) -> None:
        self.ctx = Context(
            ports,
            links,
            policy=policy or GatePolicy(),
            approval_policy=approval_policy or ApprovalPolicy(),
            timeouts=timeouts or Timeouts(),
            rollout_policy=rollout_policy or RolloutPolicy(),
            promote_inline=promote_inline,
            clock=clock,
            trust_published_requester=trust_published_requester,
            retrain_schedule=retrain_schedule,
            trust_generic_requester=trust_generic_requester,
            data_trigger=data_trigger,
        )

    @property
    def ports(self) -> Ports:
        return self.ctx.ports

    # ---- events (Event Grid, CI hooks) ----
    def receive(self, function_name: str, payload: Any) -> Outcome:
        return delivery.receive(self.ctx, function_name, payload)

    # ---- people (HTTP API, CLI) ----
    def get_release(self, release_id: str) -> Release:
        return commands.get_release(self.ctx, release_id)

    def list_releases(self, limit: int, states: list[str] | None = None) -> list[Release]:
        return commands.list_releases(self.ctx, limit, states)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        return commands.dead_letters(self.ctx, limit).items

    def approve(self, release_id: str, principal: Principal, comment: str = "") -> Release:
        return commands.approve(self.ctx, release_id, principal, comment)

    def decline(self, release_id: str, principal: Principal, comment: str) -> Release:
        return commands.decline(self.ctx, release_id, principal, comment)

    def rollback(self, principal: Principal, comment: str, to: str | None = None) -> Release:
        return commands.rollback(self.ctx, principal, comment, to)

    # ---- the timer ----
    def reconcile(self) -> dict[str, int]:
        """Open releases first (they may enqueue work), then the background work that is due."""
        return timer_pass(self.ctx)

    def follow(self, passes: int = 1) -> dict[str, int]:
        """The follow timer's pass, ``passes`` times (each carries on what finished in the one before)."""
        counts: dict[str, int] = {}
        for _ in range(passes):
            for name, count in follow_all(self.ctx).items():
                counts[name] = counts.get(name, 0) + count
        return counts
