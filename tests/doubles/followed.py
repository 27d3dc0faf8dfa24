"""The service with the follow timer's passes run after each call, as the host's timer runs them
seconds later: for tests about what happens; tests/unit/test_operations.py is about when."""

from __future__ import annotations

from typing import Any

from functions.domain.approval import Principal
from functions.domain.release import Release
from functions.domain.rollout import RolloutPolicy
from functions.service.orchestrator import Orchestrator
from functions.service.results import Outcome

PASSES = 4  # staging, beside, traffic: each pass carries on what ended in the one before
# Traffic moves at once unless a test is about rollout steps (tests/unit/test_rollout_steps.py): holding
# windows needs a clock that moves and evidence that something was served.
AT_ONCE = RolloutPolicy(steps=())


class Followed(Orchestrator):
    def __init__(self, *args: Any, rollout_policy: RolloutPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, rollout_policy=rollout_policy or AT_ONCE, **kwargs)

    def receive(self, function_name: str, payload: Any) -> Outcome:
        outcome = super().receive(function_name, payload)
        self.follow(passes=PASSES)
        return outcome

    def approve(self, release_id: str, principal: Principal, comment: str = "") -> Release:
        release = super().approve(release_id, principal, comment)
        self.follow(passes=PASSES)
        return self.get_release(release.id)

    def rollback(self, principal: Principal, comment: str, to: str | None = None) -> Release:
        release = super().rollback(principal, comment, to)
        self.follow(passes=PASSES)
        return self.get_release(release.id)

    def reconcile(self) -> dict[str, int]:
        counts = super().reconcile()
        self.follow(passes=PASSES)
        return counts
