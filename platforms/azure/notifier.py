"""Telling systems on Azure: each notification as an event on the custom topic
(MLOps.ReleaseNotification, data in the JSON target's format) that a Logic App can subscribe to."""

from __future__ import annotations

import logging

from functions.domain.notifications import Notification
from functions.ports import Publisher
from platforms.common.notify.formats import as_json

RELEASE_NOTIFICATION = "MLOps.ReleaseNotification"
TOPIC_TARGET = "topic"  # its name among the notification targets
log = logging.getLogger("mlops.notify")


class TopicNotificationChannel:
    """A notification channel: publish it; a topic that is down raises, and the outbox retries."""

    inline = True  # one call to the platform's own topic, like the state-change events

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def send(self, notification: Notification) -> None:
        log.info("%s: %s", notification.release_id, notification.title)
        subject = f"releases/{notification.release_id}"
        # The notification's own id as the event id: a retried publish can be dropped by subscribers.
        self.publisher.publish(RELEASE_NOTIFICATION, subject, as_json(notification), event_id=notification.id or None)
