"""Fakes of the Azure management clients the ACR (images) and ACI (staging) adapters call.

Only what the adapters use, with the same method names and argument shapes as the real clients;
every call is recorded in order in ``calls`` as ``(operation, args...)``. Long-running operations
answer with a ``FakePoller`` whose ``.result()`` returns what the real poller would (and records
that someone waited).

``ArmStub`` is different: it is a ``requests`` transport adapter, so a *real*
``ContainerRegistryManagementClient`` (with its real ARM pipeline: bearer token, URL building,
JSON bodies) can be exercised offline, answering from canned responses.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from requests.adapters import BaseAdapter

from platforms.azure.images import ImageDescriptor, Run, SourceUploadDefinition

UPLOAD_URL = "https://acrsource.blob.core.windows.net/source/202611/abc.tar.gz?sv=2024-01-01&sig=secret"
RELATIVE_PATH = "source/202611/abc.tar.gz"


# ---- ACR Tasks --------------------------------------------------------------------------------


def succeeded_run(run_id: str, *images: tuple[str, str, str], status: str = "Succeeded") -> Run:
    """A run that built ``images`` given as (repository, tag, digest)."""
    return Run(
        run_id=run_id,
        status=status,
        output_images=tuple(
            ImageDescriptor(registry="crmlops.azurecr.io", repository=r, tag=t, digest=d) for r, t, d in images
        ),
    )


class FakeRegistryTasksClient:
    """``registries.get_build_source_upload_url`` / ``registries.schedule_run`` / ``runs.list``.

    A scheduled run joins the run history as ``Queued``, newest first, as the service lists it; it
    stays there until the test lets the registry work (``finish_runs``): then each queued run has
    succeeded, built and pushed its request's ``imageNames`` (with a digest), and ACR's system topic
    would have sent one ImagePushed per image (``pushed_events``, their data).
    """

    def __init__(self, runs: list[Run] | None = None, registry_host: str = "crmlops.azurecr.io") -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.run_history: list[Run] = list(runs or [])  # newest first, as the service lists them
        self.upload = SourceUploadDefinition(upload_url=UPLOAD_URL, relative_path=RELATIVE_PATH)
        self.list_error: Exception | None = None
        self.registry_host = registry_host
        self.requests: dict[str, Any] = {}  # run id -> the run request it was scheduled with
        self.pushed_events: list[dict[str, Any]] = []
        self.registries = _FakeRegistries(self)
        self.runs = _FakeRuns(self)

    def operations(self) -> list[str]:
        return [call[0] for call in self.calls]

    # ---- test controls -----------------------------------------------------------------
    def finish_runs(self, status: str = "Succeeded") -> None:
        """Every queued run ends with ``status``; a succeeded one pushed its images."""
        for index, run in enumerate(self.run_history):
            if run.status != "Queued":
                continue
            images: tuple[ImageDescriptor, ...] = ()
            if status == "Succeeded":
                images = tuple(self._pushed(run.run_id, name) for name in self.requests[run.run_id]["imageNames"])
            self.run_history[index] = dataclasses.replace(run, status=status, output_images=images)

    def _pushed(self, run_id: str, image_name: str) -> ImageDescriptor:
        repository, _, tag = image_name.rpartition(":")
        digest = "sha256:" + hashlib.sha256(f"{self.registry_host}/{image_name}@{run_id}".encode()).hexdigest()
        self.pushed_events.append(
            {"action": "push", "target": {"repository": repository, "tag": tag, "digest": digest}}
        )
        return ImageDescriptor(registry=self.registry_host, repository=repository, tag=tag, digest=digest)


class _FakeRegistries:
    def __init__(self, client: FakeRegistryTasksClient) -> None:
        self._client = client

    def get_build_source_upload_url(self, resource_group_name: str, registry_name: str) -> SourceUploadDefinition:
        self._client.calls.append(("get_build_source_upload_url", resource_group_name, registry_name))
        return self._client.upload

    def schedule_run(self, resource_group_name: str, registry_name: str, run_request: Any) -> Run:
        self._client.calls.append(("schedule_run", resource_group_name, registry_name, copy.deepcopy(run_request)))
        run = Run(run_id=f"ca{len(self._client.calls)}", status="Queued")
        self._client.requests[run.run_id] = copy.deepcopy(run_request)
        self._client.run_history.insert(0, run)
        return run


class _FakeRuns:
    def __init__(self, client: FakeRegistryTasksClient) -> None:
        self._client = client

    def list(
        self, resource_group_name: str, registry_name: str, *, filter: str | None = None, top: int | None = None
    ) -> Iterator[Run]:
        self._client.calls.append(("runs.list", resource_group_name, registry_name, filter, top))
        if self._client.list_error is not None:
            raise self._client.list_error
        runs = self._client.run_history
        return iter(runs if top is None else runs[:top])


class FakeUploader:
    def __init__(self) -> None:
        self.uploads: list[tuple[str, bytes]] = []

    def __call__(self, upload_url: str, data: bytes) -> None:
        self.uploads.append((upload_url, data))


class StaticCredential:
    """A TokenCredential that hands out a fixed token (no identity endpoint is called)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-arm-token", int(time.time()) + 3600)


@dataclass(frozen=True)
class ArmRequest:
    """What ``ArmStub`` received: the prepared request's method, URL, headers and body, as sent."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class ArmStub(BaseAdapter):
    """Answers ARM requests from ``routes``: ``{(METHOD, path suffix): (status, json body or None)}``,
    or a list of such answers given one per request (the last one repeats).

    Mounted on a ``requests.Session`` given to azure-core's ``RequestsTransport``; records every
    request it receives in ``requests`` (as an ``ArmRequest``).
    """

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        super().__init__()
        self.routes = {key: list(value) if isinstance(value, list) else [value] for key, value in routes.items()}
        self.requests: list[ArmRequest] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        headers = {name: str(value) for name, value in request.headers.items()}
        self.requests.append(ArmRequest(request.method or "", request.url or "", headers, body))
        path = (request.path_url or "").split("?")[0]
        for (method, suffix), answers in self.routes.items():
            if request.method == method and path.endswith(suffix):
                status, body = answers.pop(0) if len(answers) > 1 else answers[0]
                return self._response(request, status, body)
        return self._response(request, 404, {"error": {"code": "NotFound", "message": f"no route for {path}"}})

    @staticmethod
    def _response(request: requests.PreparedRequest, status: int, body: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.reason = "OK" if status < 400 else "Error"
        response.url = request.url or ""
        response.request = request
        content = b"" if body is None else json.dumps(body).encode()
        if content:
            response.headers["Content-Type"] = "application/json"
        response.headers["Content-Length"] = str(len(content))
        response.raw = io.BytesIO(content)
        return response

    def close(self) -> None:
        pass


def registry_mgmt_client(stub: ArmStub, subscription_id: str) -> Any:
    """A real ``ContainerRegistryManagementClient`` whose HTTP goes to ``stub``."""
    from azure.core.pipeline.transport import RequestsTransport
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    session = requests.Session()
    session.mount("https://", stub)
    transport = RequestsTransport(session=session, session_owner=False)
    # No retries: a canned error answer should surface at once.
    return ContainerRegistryManagementClient(StaticCredential(), subscription_id, transport=transport, retry_total=0)


# ---- ACI ----------------------------------------------------------------------------------------


class FakePoller:
    """An LROPoller that records whether anyone waited on it (``result()``): the adapter never should."""

    def __init__(self, operation: str, value: Any = None) -> None:
        self.operation = operation
        self.value = value
        self.waited = False

    def result(self, timeout: float | None = None) -> Any:
        self.waited = True
        return self.value

    def done(self) -> bool:
        return True


class FakeContainerGroups:
    """``container_groups`` of ``ContainerInstanceManagementClient``, keeping real ``ContainerGroup`` models.

    A group that is PUT ends in ``provisioning_state`` ("Succeeded" unless the test says otherwise) at
    once; with ``settle_at_once = False`` it stays "Creating" (as on Azure, while the image is pulled
    and the container starts) until the test calls ``settle()``. Its FQDN comes with the PUT answer,
    as ARM gives it. Every poller handed out is kept in ``pollers``.
    """

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls
        self.groups: dict[tuple[str, str], Any] = {}
        self.provisioning_state = "Succeeded"  # what a group ends in
        self.settle_at_once = True
        self.assign_fqdn = True
        # ARM answers 204 to a DELETE of a group that does not exist; set True to get a 404 instead.
        self.missing_delete_raises = False
        self.pollers: list[FakePoller] = []
        self.delete_errors: dict[str, Exception] = {}
        self.list_error: Exception | None = None  # raised by list_by_resource_group (e.g. throttling)

    def waited(self) -> list[str]:
        """The operations whose poller someone waited on."""
        return [poller.operation for poller in self.pollers if poller.waited]

    def add(self, resource_group_name: str, name: str, group: Any) -> None:
        group = copy.deepcopy(group)
        group.name = name
        self.groups[(resource_group_name, name)] = group

    def settle(self, state: str | None = None) -> None:
        """Every group still "Creating" ends in ``state`` (default: ``provisioning_state``)."""
        for group in self.groups.values():
            if group.provisioning_state == "Creating":
                group.provisioning_state = state or self.provisioning_state

    def begin_create_or_update(
        self, resource_group_name: str, container_group_name: str, container_group: Any
    ) -> FakePoller:
        self.calls.append(("begin_create_or_update", resource_group_name, container_group_name, container_group))
        stored = copy.deepcopy(container_group)
        stored.name = container_group_name
        stored.provisioning_state = self.provisioning_state if self.settle_at_once else "Creating"
        if self.assign_fqdn and stored.ip_address is not None and stored.ip_address.dns_name_label:
            tenant_hash = hashlib.sha256(b"tenant").hexdigest()[:8]
            stored.ip_address.fqdn = (
                f"{stored.ip_address.dns_name_label}.{tenant_hash}.{stored.location}.azurecontainer.io"
            )
        self.groups[(resource_group_name, container_group_name)] = stored
        return self._poller("begin_create_or_update", copy.deepcopy(stored))

    def get(self, resource_group_name: str, container_group_name: str) -> Any:
        self.calls.append(("get", resource_group_name, container_group_name))
        try:
            return copy.deepcopy(self.groups[(resource_group_name, container_group_name)])
        except KeyError:
            raise ResourceNotFoundError(f"container group {container_group_name} not found") from None

    def list_by_resource_group(self, resource_group_name: str) -> Iterator[Any]:
        self.calls.append(("list_by_resource_group", resource_group_name))
        if self.list_error is not None:
            raise self.list_error
        found = [copy.deepcopy(g) for (rg, _), g in self.groups.items() if rg == resource_group_name]
        return iter(found)

    def begin_delete(self, resource_group_name: str, container_group_name: str) -> FakePoller:
        self.calls.append(("begin_delete", resource_group_name, container_group_name))
        if container_group_name in self.delete_errors:
            raise self.delete_errors[container_group_name]
        removed = self.groups.pop((resource_group_name, container_group_name), None)
        if removed is None and self.missing_delete_raises:
            raise ResourceNotFoundError(f"container group {container_group_name} not found")
        return self._poller("begin_delete", removed)

    def _poller(self, operation: str, value: Any) -> FakePoller:
        poller = FakePoller(operation, value)
        self.pollers.append(poller)
        return poller


class FakeContainerInstanceClient:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.container_groups = FakeContainerGroups(self.calls)

    def operations(self) -> list[str]:
        return [call[0] for call in self.calls]


class ScriptedReadiness:
    """Readiness check answering from a script (then the last answer forever); records the URLs."""

    def __init__(self, *answers: bool) -> None:
        self.answers = list(answers) or [True]
        self.urls: list[str] = []

    def __call__(self, url: str) -> bool:
        self.urls.append(url)
        index = min(len(self.urls), len(self.answers)) - 1
        return self.answers[index]
