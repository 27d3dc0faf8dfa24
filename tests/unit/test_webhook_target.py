"""WebhookTarget's failures never quote the URL, whatever raised (requests, urllib3, anything else)."""

from __future__ import annotations

import pytest

from functions.domain.notifications import Notification
from platforms.common.notify.webhook import NotificationFailed, Targets, WebhookTarget

NOTE = Notification("live", "rel-1", "live", "Release rel-1 is live", "ok", "https://h/api/ui/releases/rel-1", "t")


class RaisingSession:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def post(self, *args: object, **kwargs: object) -> None:
        raise self.error


@pytest.mark.parametrize("error", [ValueError("Failed to parse: 'a..b', label empty"), OSError("a..b/SECRETSIG")])
def test_any_error_reads_as_the_target_and_the_type_only(error):
    target = WebhookTarget("ops", "json", "https://a..b/SECRETSIG", session=RaisingSession(error))  # type: ignore[arg-type]
    with pytest.raises(NotificationFailed) as caught:
        target.send(NOTE)
    assert str(caught.value) == f"ops: could not reach the target ({type(error).__name__})"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained message to print


def test_only_the_platforms_own_channels_are_sent_inline():
    class Inline:
        inline = True

        def send(self, n: Notification) -> None: ...

    targets = Targets({"file": Inline(), "ops": WebhookTarget("ops", "json", "https://x.example/h")})
    assert targets.sends_inline("file") and not targets.sends_inline("ops") and not targets.sends_inline("nope")
