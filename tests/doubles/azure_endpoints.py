"""A fake MLClient for online endpoints and deployments: in-memory state, the real SDK entities.

Only what platforms/azure/production.py and testing.py call: ``online_endpoints.get /
begin_create_or_update / get_keys`` and ``online_deployments.begin_create_or_update / list /
begin_delete``. It behaves like azure-ai-ml 1.35 and the service where that matters:

- ``online_endpoints.get`` raises ResourceNotFoundError for a missing endpoint and lists every
  deployment in ``traffic`` (0 for those without traffic), as the SDK does;
- ``online_endpoints.begin_create_or_update`` drops 0% entries and lowercases names (the SDK's
  ``_strip_zeroes_from_traffic``), and refuses traffic to a deployment that does not exist;
- ``online_deployments.begin_create_or_update`` checks the endpoint exists first (the SDK does);
- ``online_deployments.begin_delete`` refuses a deployment that still has traffic (the service does).

Every call is recorded in ``calls`` in order, with a deep copy of the entity passed, so tests
assert on exactly what the adapter sent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from azure.ai.ml.entities import EndpointAuthKeys, KubernetesOnlineDeployment, KubernetesOnlineEndpoint
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError


@dataclass
class Call:
    operation: str  # e.g. "online_deployments.begin_create_or_update"
    args: dict[str, Any]


class FakePoller:
    """An LROPoller that finished (or, ``stalled``, never finishes within the timeout)."""

    def __init__(self, result: Any = None, error: Exception | None = None, stalled: bool = False) -> None:
        self._result, self._error, self._stalled = result, error, stalled
        self.timeouts: list[float | None] = []

    def result(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        if self._stalled:
            return None
        if self._error is not None:
            raise self._error
        return self._result

    def done(self) -> bool:
        return not self._stalled

    def wait(self, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)


@dataclass
class EndpointState:
    name: str
    compute: str
    auth_mode: str
    description: str | None
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, KubernetesOnlineDeployment] = field(default_factory=dict)


class FakeMLClient:
    def __init__(self, primary_key: str = "fake-primary-key", scoring_host: str = "http://10.0.0.4") -> None:
        self.calls: list[Call] = []
        self.endpoints: dict[str, EndpointState] = {}
        self.primary_key = primary_key
        self.scoring_host = scoring_host
        self.failing_deployments: set[str] = set()  # their creation fails like a readiness probe that never passes
        self.stalled: set[str] = set()  # operations whose poller never finishes
        self.online_endpoints = FakeOnlineEndpoints(self)
        self.online_deployments = FakeOnlineDeployments(self)

    def operations(self) -> list[str]:
        return [call.operation for call in self.calls]

    def sent(self, operation: str) -> list[Any]:
        """The first argument of every recorded call of ``operation``, in order."""
        return [next(iter(call.args.values())) for call in self.calls if call.operation == operation]

    def scoring_uri(self, endpoint_name: str) -> str:
        return f"{self.scoring_host}/api/v1/endpoint/{endpoint_name}/score"

    def add_deployment(self, endpoint_name: str, deployment: KubernetesOnlineDeployment) -> None:
        """Put a deployment in place without recording a call (e.g. one made by hand in the portal)."""
        self.endpoints[endpoint_name].deployments[_name(deployment.name, "deployment")] = copy.deepcopy(deployment)

    def _record(self, operation: str, **args: Any) -> None:
        self.calls.append(Call(operation, copy.deepcopy(args)))

    def _poller(self, operation: str, result: Any = None, error: Exception | None = None) -> FakePoller:
        return FakePoller(result, error, stalled=operation in self.stalled)

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
            provisioning_state="Succeeded",
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
        known = state.deployments if state else {}
        unknown = sorted(set(traffic) - set(known))
        if unknown:
            error = HttpResponseError(f"(BadArgument) traffic names deployments that do not exist: {unknown}")
            return client._poller("online_endpoints.begin_create_or_update", error=error)
        if state is None:
            compute = str(endpoint.compute).removeprefix("azureml:")
            state = EndpointState(name, compute, endpoint.auth_mode or "key", endpoint.description)
            client.endpoints[name] = state
        state.tags = dict(endpoint.tags or {})
        state.traffic = traffic
        state.description = endpoint.description
        return client._poller("online_endpoints.begin_create_or_update", client._endpoint_entity(state))

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
        name = _name(deployment.name, "deployment")
        stored = copy.deepcopy(deployment)
        if name in client.failing_deployments:
            stored._provisioning_state = "Failed"
            state.deployments[name] = stored
            error = HttpResponseError(f"(DeploymentFailed) {deployment.name}: the readiness probe never passed")
            return client._poller("online_deployments.begin_create_or_update", error=error)
        stored._provisioning_state = "Succeeded"
        state.deployments[name] = stored
        return client._poller("online_deployments.begin_create_or_update", copy.deepcopy(stored))

    def list(self, endpoint_name: str) -> list[KubernetesOnlineDeployment]:
        self._client._record("online_deployments.list", endpoint_name=endpoint_name)
        return [copy.deepcopy(d) for d in self._client._state(endpoint_name).deployments.values()]

    def begin_delete(self, name: str, endpoint_name: str) -> FakePoller:
        client = self._client
        client._record("online_deployments.begin_delete", name=name, endpoint_name=endpoint_name)
        state = client._state(endpoint_name)
        if state.traffic.get(name):
            raise HttpResponseError(f"(BadArgument) deployment {name} has {state.traffic[name]}% of the traffic")
        if state.deployments.pop(name, None) is None:
            raise ResourceNotFoundError(f"(UserError) Not found: deployment {name}")
        return client._poller("online_deployments.begin_delete")


def _name(name: str | None, what: str) -> str:
    """An entity's name; the service refuses an entity without one (the SDK's entities allow None)."""
    if not name:
        raise HttpResponseError(f"(BadArgument) the {what} has no name")
    return name
