"""Publisher port on Azure: events (Event Grid schema) sent to the custom topic with azure-eventgrid.

The app publishes MLOps.ReleaseStateChanged through it; `mlops publish build-completed` sends
MLOps.BuildCompleted from any CI system. Authentication is Microsoft Entra ID
(DefaultAzureCredential: managed identity, workload identity federation, `az login`), which needs the
"EventGrid Data Sender" role on the topic, or a topic access key (AzureKeyCredential) for CI systems
that have a key rather than an identity. The key is handed in by the caller; nothing here reads the
environment or logs a credential.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from azure.core.credentials import AzureKeyCredential
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from platforms.azure.settings import AzureSettings

DATA_VERSION = "1.0"


class EventSender(Protocol):
    """What EventGridPublisher needs from azure.eventgrid.EventGridPublisherClient."""

    def send(self, events: list[EventGridEvent], **kwargs: Any) -> None: ...

    def close(self) -> None: ...


def credential_for(access_key: str | None = None) -> AzureKeyCredential | TokenCredential:
    """The topic access key when one is given, else DefaultAzureCredential."""
    if access_key:
        return AzureKeyCredential(access_key)
    from platforms.azure.clients import credential_or_default

    return credential_or_default()


class EventGridPublisher:
    """functions.ports.Publisher for an Event Grid custom topic (Event Grid schema)."""

    def __init__(
        self,
        endpoint: str,
        credential: AzureKeyCredential | TokenCredential,
        client: EventSender | None = None,
    ) -> None:
        if not endpoint.startswith("https://"):
            raise ValueError(f"an Event Grid topic endpoint is an https URL, got {endpoint!r}")
        self.endpoint = endpoint
        self._client: EventSender = client or EventGridPublisherClient(endpoint, credential)

    @classmethod
    def from_settings(
        cls, settings: AzureSettings, credential: AzureKeyCredential | TokenCredential | None = None
    ) -> EventGridPublisher:
        return cls(settings.topic_endpoint, credential or credential_for())

    def publish(self, event_type: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
        identity = {"id": event_id} if event_id else {}  # else the SDK makes a new UUID
        event = EventGridEvent(subject=subject, event_type=event_type, data=data, data_version=DATA_VERSION, **identity)
        self._client.send([event])
        return str(event.id)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EventGridPublisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
