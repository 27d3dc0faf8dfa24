"""A fake MLClient for online endpoints and deployments: in-memory state, the real SDK entities.

Only what platforms/azure/production.py and testing.py call: ``online_endpoints.get /
begin_create_or_update / get_keys`` and ``online_deployments.begin_create_or_update / get / list /
begin_delete``. It behaves like azure-ai-ml 1.35 and the service where that matters:

- ``online_endpoints.get`` raises ResourceNotFoundError for a missing endpoint and lists every
  deployment in ``traffic`` (0 for those without traffic), as the SDK does;
- ``online_endpoints.begin_create_or_update`` drops 0% entries and lowercases names (the SDK's
  ``_strip_zeroes_from_traffic``), and refuses (at once, as the service answers the PUT with a 400)
  traffic to a deployment that does not exist or is not provisioned;
- ``online_deployments.begin_create_or_update`` checks the endpoint exists first (the SDK does) and
  is refused (409) while the endpoint, or that deployment, is still being created or updated;
- ``online_deployments.begin_delete`` refuses a deployment that still has traffic (the service does).

Long-running operations: by default each one is over when its ``begin_*`` returns (Succeeded, or
Failed for ``failing_deployments`` / ``failing_endpoints``), so simple tests stay simple. With
``settle_at_once = False`` they stay in flight, as on Azure: an endpoint "Creating" / "Updating"
(with its old traffic), a deployment "Creating" / "Updating", one being deleted "Deleting", until
the test calls ``settle()``. Every poller handed out is kept in ``pollers``; ``waited()`` names
the operations someone called ``result()`` or ``wait()`` on (the adapter never should).

Every call is recorded in ``calls`` in order, with a deep copy of the entity passed, so tests
assert on exactly what the adapter sent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.ai.ml.entities import EndpointAuthKeys, KubernetesOnlineDeployment, KubernetesOnlineEndpoint
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

SUCCEEDED, FAILED = "Succeeded", "Failed"


@dataclass
class Call:
    operation: str  # e.g. "online_deployments.begin_create_or_update"
    args: dict[str, Any]


class FakePoller:
    """An LROPoller: ``done()`` once its operation settled; ``result()`` and ``wait()`` are recorded."""

    def __init__(
        self, operation: str, done: Callable[[], bool], result: Any = None, error: Exception | None = None
    ) -> None:
        self.operation = operation
        self._done, self._result, self._error = done, result, error
        self.waits: list[float | None] = []

    def result(self, timeout: float | None = None) -> Any:
        self.waits.append(timeout)
        if self._error is not None:
            raise self._error
        return self._result

    def done(self) -> bool:
        return self._done()

    def wait(self, timeout: float | None = None) -> None:
        self.waits.append(timeout)


@dataclass
class EndpointState:
    name: str
    compute: str
    auth_mode: str
    description: str | None
    provisioning_state: str = SUCCEEDED
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    pending_traffic: dict[str, int] | None = None  # an update in flight: applied when it settles
    deployments: dict[str, KubernetesOnlineDeployment] = field(default_factory=dict)
    deleting: set[str] = field(default_factory=set)


class FakeMLClient:
    def __init__(self, primary_key: str = "fake-primary-key", scoring_host: str = "http://10.0.0.4") -> None:
        self.calls: list[Call] = []
        self.endpoints: dict[str, EndpointState] = {}
        self.primary_key = primary_key
        self.scoring_host = scoring_host
        self.settle_at_once = True  # False: operations stay in flight until settle()
        self.failing_deployments: set[str] = set()  # they end Failed, like a readiness probe that never passes
        self.failing_endpoints: set[str] = set()  # their creation or update ends Failed (traffic unchanged)
        self.pollers: list[FakePoller] = []
        self.online_endpoints = FakeOnlineEndpoints(self)
        self.online_deployments = FakeOnlineDeployments(self)

    # ---- what tests read and drive -------------------------------------------------------
    def operations(self) -> list[str]:
        return [call.operation for call in self.calls]

    def sent(self, operation: str) -> list[Any]:
        """The first argument of every recorded call of ``operation``, in order."""
        return [next(iter(call.args.values())) for call in self.calls if call.operation == operation]

    def waited(self) -> list[str]:
        """The operations whose poller someone waited on (``result()`` / ``wait()``)."""
        return [poller.operation for poller in self.pollers if poller.waits]

    def scoring_uri(self, endpoint_name: str) -> str:
        return f"{self.scoring_host}/api/v1/endpoint/{endpoint_name}/score"

    def add_deployment(self, endpoint_name: str, deployment: KubernetesOnlineDeployment) -> None:
        """Put a deployment in place without recording a call (e.g. one made by hand in the portal)."""
        self.endpoints[endpoint_name].deployments[_name(deployment.name, "deployment")] = copy.deepcopy(deployment)

    def settle(self) -> None:
        """Every operation in flight ends: endpoints and deployments provisioned (or failed), deletions done."""
        for state in self.endpoints.values():
            for name, deployment in state.deployments.items():
                if deployment.provisioning_state in ("Creating", "Updating"):
                    deployment._provisioning_state = FAILED if name in self.failing_deployments else SUCCEEDED
            for name in state.deleting:
                state.deployments.pop(name, None)
            state.deleting.clear()
            if state.provisioning_state in ("Creating", "Updating"):
                failed = state.name in self.failing_endpoints
                state.provisioning_state = FAILED if failed else SUCCEEDED
                if state.pending_traffic is not None and not failed:
                    state.traffic = state.pending_traffic
                state.pending_traffic = None

    # ---- shared by the operations ------------------------------------------------------
    def _record(self, operation: str, **args: Any) -> None:
        self.calls.append(Call(operation, copy.deepcopy(args)))

    def _poller(
        self, operation: str, done: Callable[[], bool], result: Any = None, error: Exception | None = None
    ) -> FakePoller:
        poller = FakePoller(operation, done, result, error)
        self.pollers.append(poller)
        return poller

    def _state(self, name: str) -> EndpointState:
        state = self.endpoints.get(name)
        if state is None:
            raise ResourceNotFoundError(f"(UserError) Not found: online endpoint {name}")
        return state

    def _endpoint_entity(self, state: EndpointState) -> KubernetesOnlineEndpoint:
        traffic = {name: 0 for name in state.deployments} | dict(state.traffic)
        return KubernetesOnlineEndpoint(
            name=state.name,
            compute=state.compute,
            auth_mode=state.auth_mode,
            description=state.description,
            tags=dict(state.tags),
            traffic=traffic,
            provisioning_state=state.provisioning_state,
            scoring_uri=self.scoring_uri(state.name),
        )


class FakeOnlineEndpoints:
    def __init__(self, client: FakeMLClient) -> None:
        self._client = client

    def get(self, name: str) -> KubernetesOnlineEndpoint:
        self._client._record("online_endpoints.get", name=name)
        return self._client._endpoint_entity(self._client._state(name))

    def begin_create_or_update(self, endpoint: KubernetesOnlineEndpoint) -> FakePoller:
        client = self._client
        client._record("online_endpoints.begin_create_or_update", endpoint=endpoint)
        traffic = {name.lower(): int(share) for name, share in (endpoint.traffic or {}).items() if int(share)}
        name = _name(endpoint.name, "online endpoint")
        state = client.endpoints.get(name)
        _check_traffic(state, traffic)
        if state is None:
            compute = str(endpoint.compute).removeprefix("azureml:")
            state = EndpointState(name, compute, endpoint.auth_mode or "key", endpoint.description, "Creating")
            client.endpoints[name] = state
        elif state.provisioning_state in ("Creating", "Updating"):
            raise ResourceExistsError(f"(Conflict) online endpoint {name} has an operation in progress")
        else:
            state.provisioning_state = "Updating"
        state.tags = dict(endpoint.tags or {})
        state.description = endpoint.description
        state.pending_traffic = traffic
        if client.settle_at_once:
            client.settle()

        def done() -> bool:
            return state.provisioning_state not in ("Creating", "Updating")

        return client._poller("online_endpoints.begin_create_or_update", done, client._endpoint_entity(state))

    def get_keys(self, name: str) -> EndpointAuthKeys:
        self._client._record("online_endpoints.get_keys", name=name)
        self._client._state(name)
        return EndpointAuthKeys(primary_key=self._client.primary_key, secondary_key="fake-secondary-key")


class FakeOnlineDeployments:
    def __init__(self, client: FakeMLClient) -> None:
        self._client = client

    def begin_create_or_update(self, deployment: KubernetesOnlineDeployment) -> FakePoller:
        client = self._client
        client._record("online_deployments.begin_create_or_update", deployment=deployment)
        state = client._state(_name(deployment.endpoint_name, "endpoint"))  # the SDK gets the endpoint first
        if state.provisioning_state != SUCCEEDED:
            raise ResourceExistsError(
                f"(Conflict) online endpoint {state.name} is {state.provisioning_state}; try again once it is done"
            )
        name = _name(deployment.name, "deployment")
        existing = state.deployments.get(name)
        if existing is not None and existing.provisioning_state in ("Creating", "Updating"):
            raise ResourceExistsError(f"(Conflict) deployment {name} has an operation in progress")
        stored = copy.deepcopy(deployment)
        stored._provisioning_state = "Updating" if name in state.deployments else "Creating"
        state.deployments[name] = stored
        if client.settle_at_once:
            client.settle()
        error = None
        if name in client.failing_deployments:
            error = HttpResponseError(f"(DeploymentFailed) {deployment.name}: the readiness probe never passed")

        def done() -> bool:
            return stored.provisioning_state not in ("Creating", "Updating")

        return client._poller("online_deployments.begin_create_or_update", done, copy.deepcopy(stored), error)

    def get(self, name: str, endpoint_name: str) -> KubernetesOnlineDeployment:
        self._client._record("online_deployments.get", name=name, endpoint_name=endpoint_name)
        state = self._client._state(endpoint_name)
        if name not in state.deployments:
            raise ResourceNotFoundError(f"(UserError) Not found: deployment {name} of {endpoint_name}")
        return _as_read(state, name)

    def list(self, endpoint_name: str) -> list[KubernetesOnlineDeployment]:
        self._client._record("online_deployments.list", endpoint_name=endpoint_name)
        state = self._client._state(endpoint_name)
        return [_as_read(state, name) for name in state.deployments]

    def begin_delete(self, name: str, endpoint_name: str) -> FakePoller:
        client = self._client
        client._record("online_deployments.begin_delete", name=name, endpoint_name=endpoint_name)
        state = client._state(endpoint_name)
        if state.traffic.get(name) or (state.pending_traffic or {}).get(name):
            raise HttpResponseError(f"(BadArgument) deployment {name} has traffic: move it first")
        if name not in state.deployments:
            raise ResourceNotFoundError(f"(UserError) Not found: deployment {name}")
        state.deleting.add(name)
        if client.settle_at_once:
            client.settle()

        def done() -> bool:
            return name not in state.deployments

        return client._poller("online_deployments.begin_delete", done)


def _as_read(state: EndpointState, name: str) -> KubernetesOnlineDeployment:
    """A deployment as get() and list() answer: a copy, "Deleting" while its deletion is in flight."""
    found = copy.deepcopy(state.deployments[name])
    if name in state.deleting:
        found._provisioning_state = "Deleting"
    return found


def _check_traffic(state: EndpointState | None, traffic: dict[str, int]) -> None:
    """The service refuses traffic to a deployment that is not there, or not provisioned."""
    deployments = state.deployments if state else {}
    unknown = sorted(set(traffic) - set(deployments))
    if unknown:
        raise HttpResponseError(f"(BadArgument) traffic names deployments that do not exist: {unknown}")
    unready = sorted(name for name in traffic if deployments[name].provisioning_state not in (SUCCEEDED, None))
    if unready:
        raise HttpResponseError(f"(BadArgument) traffic names deployments that are not provisioned: {unready}")


def _name(name: str | None, what: str) -> str:
    """An entity's name; the service refuses an entity without one (the SDK's entities allow None)."""
    if not name:
        raise HttpResponseError(f"(BadArgument) the {what} has no name")
    return name
