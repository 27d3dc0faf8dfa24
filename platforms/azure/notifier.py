"""Telling people on Azure: a structured log line (Application Insights) and an event on the
custom topic (MLOps.ReleaseNotification) that a Logic App or Teams connector can subscribe to."""

from __future__ import annotations

import json
import logging

from functions.ports import Publisher

RELEASE_NOTIFICATION = "MLOps.ReleaseNotification"
log = logging.getLogger("mlops.notify")


class EventGridNotifier:
    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def notify(self, release_id: str, subject: str, body: str) -> None:
        log.info(json.dumps({"release_id": release_id, "subject": subject, "body": body}))
        try:
            self.publisher.publish(
                RELEASE_NOTIFICATION,
                f"releases/{release_id}",
                {"releaseId": release_id, "subject": subject, "body": body},
            )
        except Exception:  # a notification must never fail a release step
            log.exception("release %s: could not publish the notification", release_id)
