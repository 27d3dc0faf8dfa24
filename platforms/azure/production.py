"""Production on AKS: an Azure ML Kubernetes online endpoint, one deployment per key (a release id).

Nothing here waits for a long-running operation: every ``begin_*`` sends its request and returns
an Operation; ``follow`` looks once (a GET) at where it is, and the service's timer follows it.

``begin_beside`` creates (or updates) the key's deployment beside the one serving, without touching
the endpoint's traffic (Azure ML waits for the container's readiness probe before it reports the
deployment Succeeded). The same key with the same image and model is left alone, so a retried
step, or a rollback to a deployment kept at 0%, does not restart it. Before the first deployment
the endpoint itself is created; that is long too, so the Operation starts in the "endpoint" phase
and ``follow`` begins the deployment once the endpoint has succeeded.

``direct`` is the deployment on its own: the endpoint's URL, and the tester's
``azureml-model-deployment`` header naming it. ``begin_traffic`` sets the endpoint's traffic to
exactly the weights given (deployments not named get none); ``remove`` deletes a deployment that
has no traffic. A Kubernetes online endpoint cannot mirror traffic (Azure ML: "Mirror traffic isn't
currently supported for Kubernetes online endpoints", MIRROR_DOC): ``can_mirror`` is False and a
mirror is refused before anything is sent (a rollout then skips its shadow step).

Each deployment sends its requests to the workspace's Application Insights (``app_insights_enabled``)
under its own name (``SERVICE_NAME``, which azmlinfsrv writes as the "Service Name" of every request):
what platforms/azure/evidence.py reads a rollout step's evidence from. ``telemetry_names`` gives the
deployment names of keys exactly as the rest of this module resolves them.

What served before is recorded on the endpoint's own tags (``current_deployment``,
``current_release``, ``previous_deployment``, ``previous_release``), so a restarted Function
App, or an operator in the portal, sees the same history. Each deployment carries the
``release_id`` tag (its key), which is how ``traffic`` names deployments by key. The endpoint
uses key auth; the tester fetches the key (``online_endpoints.get_keys``) when it calls it.

Deployment names come from the key (readable prefix + hash): the same key always maps to the same
deployment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from functions.domain.refs import Endpoint, ImageRef, ModelRef, Operation, Progress

if TYPE_CHECKING:
    from azure.ai.ml.entities import KubernetesOnlineEndpoint, ResourceRequirementsSettings

    from platforms.azure.settings import AzureSettings

logger = logging.getLogger("mlops.production")

SCORING_PORT = 5001  # azmlinfsrv's port in the scoring image (scoring/Dockerfile)
INFERENCE_CONFIG: dict[str, dict[str, Any]] = {
    "liveness_route": {"path": "/", "port": SCORING_PORT},
    "readiness_route": {"path": "/", "port": SCORING_PORT},
    "scoring_route": {"path": "/score", "port": SCORING_PORT},
}
DEPLOYMENT_HEADER = "azureml-model-deployment"  # routes a request to one deployment, whatever the traffic
# Endpoint tags: the traffic history.
CURRENT_DEPLOYMENT = "current_deployment"
CURRENT_RELEASE = "current_release"
PREVIOUS_DEPLOYMENT = "previous_deployment"
PREVIOUS_RELEASE = "previous_release"
RELEASE_TAG = "release_id"  # on each deployment: its key
HISTORY_TAGS = (CURRENT_DEPLOYMENT, CURRENT_RELEASE, PREVIOUS_DEPLOYMENT, PREVIOUS_RELEASE)
# Operation kinds and the phases of a "beside" operation.
BESIDE, TRAFFIC = "beside", "traffic"
ENDPOINT_PHASE, DEPLOYMENT_PHASE = "endpoint", "deployment"
PENDING_PHASE = "pending"  # a traffic change waiting for the endpoint to finish another update
_NAME_PREFIX_MAX = 23  # + "-" + 8 hex = 32, Azure ML's limit for deployment names
# Application Insights, per deployment: azmlinfsrv (scoring/requirements.txt) writes SERVICE_NAME as the
# "Service Name" of each request it logs, and the response body as its "Response Value" (on by default;
# set so that it stays on): platforms/azure/evidence.py reads both.
SERVICE_NAME_VARIABLE = "SERVICE_NAME"
LOG_RESPONSE_VARIABLE = "APP_INSIGHTS_LOG_RESPONSE_ENABLED"
MIRROR_DOC = "https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints"
# Provisioning states, lowercased. "" is an entity that reports none (one made by hand): taken as ready.
_READY = ("succeeded", "")
_FAILED = ("failed", "canceled")


class ProductionError(RuntimeError):
    """Production could not be changed; the message says what and why."""


def deployment_name(release_id: str) -> str:
    """The key's deployment name: 3-32 chars, lowercase letters, digits and '-', starting with a
    letter, ending with a letter or digit (Azure ML's rule); the hash keeps it unique per key."""
    digest = hashlib.sha256(release_id.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", release_id.lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"r-{slug}"
    return f"{slug[:_NAME_PREFIX_MAX].rstrip('-')}-{digest}"


def image_uri(image: ImageRef, login_server: str) -> str:
    """The image the cluster pulls: ``<login server>/<repository>:<tag>``.

    The Azure images adapter puts that full reference in ``image.location``; a bare login server
    there (ports.py's wording) or none at all is completed. The tag ``<model version>-<release id>``
    is unique per release; the digest goes on the deployment's tags.
    """
    location = image.location.strip()
    if "/" in location:
        return location
    return f"{location or login_server}/{image.repository}:{image.tag}"


def model_asset(model: ModelRef) -> str:
    """The registered model as a deployment references it (``azureml:<name>:<version>``)."""
    location = model.location.strip()
    if location.startswith("azureml:") and not location.startswith("azureml://datastores/"):
        return location
    return f"azureml:{model.name}:{model.version}"


class AksProduction:
    """The production half of the Deployer port on an Azure ML Kubernetes online endpoint."""

    def __init__(
        self,
        settings: AzureSettings,
        ml_client: Any,
        *,
        instance_type: str | None = None,
        instance_count: int = 1,
        resources: ResourceRequirementsSettings | None = None,
    ) -> None:
        """``instance_type`` None uses the cluster's default instance type (instance types are
        CRDs the cluster admin defines; ``defaultinstancetype`` always exists). ``resources`` None
        takes the instance type's requests/limits."""
        self.settings = settings
        self.ml_client = ml_client
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.resources = resources

    @property
    def endpoint_name(self) -> str:
        return self.settings.endpoint

    # ---- the Deployer port's production half --------------------------------------------
    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation:
        name = deployment_name(deployment)
        endpoint = self._get_endpoint()
        if endpoint is None:
            self._create_endpoint()
            return self._endpoint_phase(deployment, name, image, model)
        state = _state(endpoint)
        if state in _FAILED:
            raise ProductionError(
                f"online endpoint {self.endpoint_name} is in provisioning state {endpoint.provisioning_state}: "
                "fix or delete it before deploying to it"
            )
        if state not in _READY:  # still being created or updated: a deployment PUT now would conflict
            return self._endpoint_phase(deployment, name, image, model)
        current = self._find_deployment(name)
        if current is not None and _same_build(current, deployment, image, model) and _state(current) not in _FAILED:
            # There already (kept for rollback, or a retried step), or coming up: a PUT would restart it.
            logger.info("deployment %s of %s is there for %s already", name, self.endpoint_name, image.reference)
        else:
            self._begin_deployment(name, deployment, image, model)
        return Operation(
            BESIDE, deployment, {"phase": DEPLOYMENT_PHASE, "endpoint": self.endpoint_name, "deployment": name}
        )

    def direct(self, deployment: str) -> Endpoint:
        endpoint = self._get_endpoint()
        if endpoint is None:
            raise ProductionError(f"online endpoint {self.endpoint_name} does not exist, so neither does {deployment}")
        return self._endpoint(endpoint, deployment)

    def can_mirror(self) -> bool:
        """A Kubernetes online endpoint has no mirrored traffic (MIRROR_DOC, "limitations")."""
        return False

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation:
        _check_weights(weights)
        mirrored = {key: share for key, share in (mirror or {}).items() if share}
        if mirrored:
            raise ProductionError(
                f"cannot mirror traffic of {self.endpoint_name} to {', '.join(sorted(mirrored))}: Azure ML "
                f"Kubernetes online endpoints do not support mirrored traffic (only managed online endpoints do; "
                f"{MIRROR_DOC})"
            )
        endpoint = self._get_endpoint()
        if endpoint is None:
            raise ProductionError(f"cannot route traffic: online endpoint {self.endpoint_name} does not exist")
        deployments = self._deployments()
        tags = dict(endpoint.tags or {})
        # The keys traffic() gives back, so that traffic saved before a promotion can be put back as it was.
        names = {key: _name_of(key, deployments, tags) for key in weights}
        unknown = sorted(key for key, name in names.items() if name not in deployments)
        if unknown:
            raise ProductionError(
                f"cannot route traffic of {self.endpoint_name} to {', '.join(unknown)}: no such deployment"
            )
        unready = sorted(
            key for key, share in weights.items() if share and _state(deployments[names[key]]) not in _READY
        )
        if unready:
            raise ProductionError(
                f"cannot route traffic of {self.endpoint_name} to {', '.join(unready)}: not provisioned "
                f"({', '.join(str(deployments[names[key]].provisioning_state) for key in unready)})"
            )
        expected = {names[key]: share for key, share in weights.items() if share}
        key = max(weights, key=weights.__getitem__)  # of equal weights, the first named
        handle = {"endpoint": self.endpoint_name, "traffic": expected}
        if _routes(endpoint) == expected and tags.get(CURRENT_DEPLOYMENT) == names[key] and _state(endpoint) in _READY:
            logger.info("production endpoint %s routes %s already", self.endpoint_name, json.dumps(expected))
            return Operation(TRAFFIC, key, handle)
        if _state(endpoint) not in _READY and _state(endpoint) not in _FAILED:
            # Another update is in flight (Azure ML answers 409 to a second one): send it once that ended.
            logger.info("endpoint %s is %s: the traffic change waits for it", self.endpoint_name, _state(endpoint))
            return Operation(TRAFFIC, key, {**handle, "phase": PENDING_PHASE, "weights": dict(weights)})
        history = self._history(endpoint, names[key], key, deployments)
        endpoint.traffic = dict(expected)  # exactly these: a deployment not named gets no traffic
        endpoint.mirror_traffic = {}
        endpoint.tags = {tag: value for tag, value in tags.items() if tag not in HISTORY_TAGS} | history
        self.ml_client.online_endpoints.begin_create_or_update(endpoint)
        logger.info(
            "routing production endpoint %s: %s (previous: %s)",
            self.endpoint_name,
            json.dumps(expected),
            history.get(PREVIOUS_RELEASE, "none"),
        )
        return Operation(TRAFFIC, key, handle)

    def traffic(self) -> dict[str, int]:
        endpoint = self._get_endpoint()
        if endpoint is None:
            return {}
        routes = _routes(endpoint)
        if not routes:
            return {}
        keys = self._keys(endpoint, routes)
        return {keys[name]: share for name, share in routes.items()}

    def deployments(self) -> list[str]:
        """The keys of the deployments releases made (the ``release_id`` tag), but those being deleted.
        One made by hand is left out, so that nothing cleaning up by this list ever removes it."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = self._deployments()
        except ResourceNotFoundError:  # no endpoint yet
            return []
        keys = ((d.tags or {}).get(RELEASE_TAG) for d in found.values() if _state(d) != "deleting")
        return sorted(str(key) for key in keys if key)

    def remove(self, deployment: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        name = deployment_name(deployment)
        endpoint = self._get_endpoint()
        if endpoint is None:
            logger.info("no online endpoint %s: deployment %s is gone already", self.endpoint_name, name)
            return
        share = _routes(endpoint).get(name, 0)
        if share:
            raise ProductionError(
                f"cannot remove deployment {name} ({deployment}): it has {share}% of {self.endpoint_name}'s "
                "traffic; move the traffic first"
            )
        try:
            # The DELETE is accepted when begin_delete returns; nobody needs to wait for it to finish.
            self.ml_client.online_deployments.begin_delete(name=name, endpoint_name=self.endpoint_name)
        except ResourceNotFoundError:
            logger.info("deployment %s of %s was gone already", name, self.endpoint_name)
            return
        logger.info("deleting deployment %s (%s) of %s", name, deployment, self.endpoint_name)

    def follow(self, operation: Operation) -> Progress:
        if operation.kind == BESIDE:
            if operation.handle.get("phase") == ENDPOINT_PHASE:
                return self._follow_endpoint_phase(operation)
            return self._follow_deployment(operation)
        if operation.kind == TRAFFIC:
            return self._follow_traffic(operation)
        raise ProductionError(f"AKS production does not follow {operation.kind!r} operations")

    def telemetry_names(self, keys: Iterable[str]) -> dict[str, tuple[str, bool]]:
        """Key -> (its deployment's name, whether that deployment sends its requests to Application
        Insights under that name), resolved as ``begin_traffic`` resolves keys (``_name_of``). A key with
        no deployment (or no endpoint yet) gets the name it would have, and False."""
        endpoint = self._get_endpoint()
        if endpoint is None:
            return {key: (deployment_name(key), False) for key in keys}
        deployments, tags = self._deployments(), dict(endpoint.tags or {})
        names = {key: _name_of(key, deployments, tags) for key in keys}
        return {key: (name, _logs_requests(deployments.get(name), name)) for key, name in names.items()}

    def production_endpoint(self) -> Endpoint:
        endpoint = self._get_endpoint()
        if endpoint is None:
            return Endpoint(self.endpoint_name, "", "")
        serving = _serving(endpoint)
        key = self._keys(endpoint, [serving])[serving] if serving else ""
        return self._endpoint(endpoint, key)

    # ---- following ------------------------------------------------------------------
    def _follow_endpoint_phase(self, operation: Operation) -> Progress:
        """The endpoint was being created (or updated): once it succeeded, begin the deployment."""
        name = str(operation.handle["deployment"])
        endpoint = self._get_endpoint()
        if endpoint is None:
            return Progress(
                "failed", f"online endpoint {self.endpoint_name} does not exist (deployment {name} waited for it)"
            )
        state = _state(endpoint)
        if state in _FAILED:
            return Progress(
                "failed", f"online endpoint {self.endpoint_name} failed to provision ({endpoint.provisioning_state})"
            )
        if state not in _READY:
            return Progress(
                "running",
                f"online endpoint {self.endpoint_name}: provisioning {endpoint.provisioning_state}; "
                f"deployment {name} begins once it succeeded",
            )
        image = ImageRef(**operation.handle["image"])
        model = ModelRef(**operation.handle["model"])
        current = self._find_deployment(name)
        if current is None or not _same_build(current, operation.deployment, image, model):
            from azure.core.exceptions import ResourceExistsError

            try:
                self._begin_deployment(name, operation.deployment, image, model)
            except ResourceExistsError as exc:  # 409: another operation on the endpoint; the next look retries
                return Progress("running", f"deployment {name} cannot begin yet: {exc}")
            return Progress("running", f"online endpoint {self.endpoint_name} is ready; deployment {name} begun")
        return self._deployment_progress(operation.deployment, current, endpoint)

    def _follow_deployment(self, operation: Operation) -> Progress:
        name = str(operation.handle["deployment"])
        current = self._find_deployment(name)
        if current is None:
            return Progress("failed", f"deployment {name} of {self.endpoint_name} does not exist")
        return self._deployment_progress(operation.deployment, current, None)

    def _deployment_progress(self, key: str, deployment: Any, endpoint: Any) -> Progress:
        state = _state(deployment)
        what = f"deployment {deployment.name} of {self.endpoint_name}: provisioning {deployment.provisioning_state}"
        if state in _FAILED:
            return Progress("failed", what)
        if state not in _READY:
            return Progress("running", what)
        return Progress("succeeded", what, endpoint=self._endpoint(endpoint, key) if endpoint else self.direct(key))

    def _follow_traffic(self, operation: Operation) -> Progress:
        expected = {str(name).lower(): int(share) for name, share in operation.handle["traffic"].items() if share}
        endpoint = self._get_endpoint()
        if endpoint is None:
            return Progress("failed", f"online endpoint {self.endpoint_name} does not exist")
        routes, state = _routes(endpoint), _state(endpoint)
        what = (
            f"online endpoint {self.endpoint_name}: provisioning {endpoint.provisioning_state}, "
            f"traffic {json.dumps(routes, sort_keys=True)}"
        )
        if state in _READY and routes == expected:
            return Progress("succeeded", what, endpoint=self._endpoint(endpoint, operation.deployment))
        if operation.handle.get("phase") == PENDING_PHASE and (state in _READY or state in _FAILED):
            self.begin_traffic(dict(operation.handle["weights"]))  # the update it waited for is over: send it
            return Progress("running", f"{what}; traffic change sent: {json.dumps(expected, sort_keys=True)}")
        if state in _FAILED:
            return Progress("failed", what)
        return Progress("running", f"{what}; waiting for {json.dumps(expected, sort_keys=True)}")

    # ---- SDK calls ------------------------------------------------------------------
    def _get_endpoint(self) -> KubernetesOnlineEndpoint | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            endpoint = self.ml_client.online_endpoints.get(self.endpoint_name)
        except ResourceNotFoundError:
            return None
        if getattr(endpoint, "compute", None) is None:
            raise ProductionError(
                f"online endpoint {self.endpoint_name} exists but is not a Kubernetes endpoint "
                f"(AZUREML_ENDPOINT must name an endpoint on {self.settings.aks_compute}, or none yet)"
            )
        return endpoint

    def _create_endpoint(self) -> None:
        from azure.ai.ml.entities import KubernetesOnlineEndpoint

        logger.info("creating online endpoint %s on %s", self.endpoint_name, self.settings.aks_compute)
        created = KubernetesOnlineEndpoint(
            name=self.endpoint_name,
            compute=self.settings.aks_compute,
            auth_mode="key",
            description="Production scoring endpoint; deployments managed by the MLOps release orchestrator",
        )
        self.ml_client.online_endpoints.begin_create_or_update(created)

    def _endpoint_phase(self, key: str, name: str, image: ImageRef, model: ModelRef) -> Operation:
        """Follow the endpoint first; the handle carries what the deployment needs, as JSON."""
        handle = {
            "phase": ENDPOINT_PHASE,
            "endpoint": self.endpoint_name,
            "deployment": name,
            "image": dataclasses.asdict(image),
            "model": dataclasses.asdict(model),
        }
        return Operation(BESIDE, key, handle)

    def _find_deployment(self, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml_client.online_deployments.get(name=name, endpoint_name=self.endpoint_name)
        except ResourceNotFoundError:
            return None

    def _deployments(self) -> dict[str, Any]:
        return {
            str(d.name).lower(): d for d in self.ml_client.online_deployments.list(endpoint_name=self.endpoint_name)
        }

    def _begin_deployment(self, name: str, key: str, image: ImageRef, model: ModelRef) -> None:
        self.ml_client.online_deployments.begin_create_or_update(self._deployment(name, key, image, model))
        logger.info(
            "deploying %s as %s beside production on %s (no traffic)", image.reference, name, self.endpoint_name
        )

    def _deployment(self, name: str, key: str, image: ImageRef, model: ModelRef) -> Any:
        from azure.ai.ml.entities import Environment, KubernetesOnlineDeployment

        return KubernetesOnlineDeployment(
            name=name,
            endpoint_name=self.endpoint_name,
            description=f"release {key}: {model.name}:{model.version} in {image.reference}",
            model=model_asset(model),
            environment=Environment(
                image=image_uri(image, self.settings.login_server), inference_config=INFERENCE_CONFIG
            ),
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            resources=self.resources,
            tags=_build_tags(key, image, model),
            # Its requests go to the workspace's Application Insights, named by the deployment: a rollout's evidence.
            app_insights_enabled=True,
            environment_variables={SERVICE_NAME_VARIABLE: name, LOG_RESPONSE_VARIABLE: "true"},
        )

    def _history(self, endpoint: Any, current: str, key: str, deployments: dict[str, Any]) -> dict[str, str]:
        """The history tags once ``current`` (``key``'s deployment) has the most traffic: the previous
        is what had the most before, or (a retry, or a share that did not change the leader) what the
        tags said was previous, if it is still there."""
        tags = dict(endpoint.tags or {})
        serving = _serving(endpoint)
        previous = serving if serving is not None and serving != current else tags.get(PREVIOUS_DEPLOYMENT)
        history = {CURRENT_DEPLOYMENT: current, CURRENT_RELEASE: key}
        if previous and previous != current and previous in deployments:
            history |= {PREVIOUS_DEPLOYMENT: previous, PREVIOUS_RELEASE: _key_of(previous, deployments, tags)}
        return history

    def _keys(self, endpoint: Any, names: Iterable[str]) -> dict[str, str]:
        """Deployment name -> key, for ``names`` (deployments of the endpoint)."""
        tags = dict(endpoint.tags or {})
        deployments = self._deployments()
        return {name: _key_of(name, deployments, tags) for name in names}

    def _endpoint(self, endpoint: Any, key: str) -> Endpoint:
        return Endpoint(
            name=self.endpoint_name, scoring_url=str(getattr(endpoint, "scoring_uri", None) or ""), version=key
        )


def _check_weights(weights: dict[str, int]) -> None:
    """Whole percents from 0 to 100, summing to 100: what an endpoint's traffic map accepts."""
    bad = {key: share for key, share in weights.items() if type(share) is not int or not 0 <= share <= 100}
    if bad:
        raise ProductionError(f"traffic weights must be whole percents from 0 to 100: {bad}")
    if sum(weights.values()) != 100:
        raise ProductionError(f"traffic weights must sum to 100, not {sum(weights.values())}: {weights}")


def _build_tags(key: str, image: ImageRef, model: ModelRef) -> dict[str, str]:
    tags = {RELEASE_TAG: key, "model": f"{model.name}:{model.version}", "image": image.reference}
    if image.digest:
        tags["image_digest"] = image.digest
    return tags


def _same_build(deployment: Any, key: str, image: ImageRef, model: ModelRef) -> bool:
    """Whether ``deployment`` was made for ``key`` from this image and model (by the tags ``_deployment`` writes)."""
    tags = dict(getattr(deployment, "tags", None) or {})
    return all(tags.get(tag) == value for tag, value in _build_tags(key, image, model).items())


def _logs_requests(deployment: Any, name: str) -> bool:
    """Whether ``deployment`` sends its requests to Application Insights as ``name`` (one made before
    ``_deployment`` set app_insights_enabled, or by hand, does not)."""
    if deployment is None or not getattr(deployment, "app_insights_enabled", False):
        return False
    variables = dict(getattr(deployment, "environment_variables", None) or {})
    return str(variables.get(SERVICE_NAME_VARIABLE) or "").lower() == name.lower()


def _state(entity: Any) -> str:
    return str(getattr(entity, "provisioning_state", None) or "").lower()


def _routes(endpoint: Any) -> dict[str, int]:
    """The endpoint's traffic: deployments with some, by lowercased name (as the service keeps them)."""
    return {str(name).lower(): int(share) for name, share in (endpoint.traffic or {}).items() if int(share or 0)}


def _serving(endpoint: Any) -> str | None:
    """The deployment with the most traffic, if any has some."""
    name, _ = max(_routes(endpoint).items(), key=lambda item: item[1], default=(None, 0))
    return name


def _key_of(name: str, deployments: dict[str, Any], tags: dict[str, str]) -> str:
    """A deployment's key: its release_id tag, else the endpoint's history, else its name."""
    deployment = deployments.get(name)
    key = (deployment.tags or {}).get(RELEASE_TAG) if deployment is not None else None
    return str(key or _from_history(tags, name) or name)


def _name_of(key: str, deployments: dict[str, Any], tags: dict[str, str]) -> str:
    """A key's deployment name: the one made for it, else one whose key ``_key_of`` says it is
    (a deployment from before the tags, or one made by hand), else the name it would have."""
    made = deployment_name(key)
    if made in deployments:
        return made
    return next((name for name in deployments if _key_of(name, deployments, tags) == key), made)


def _from_history(tags: dict[str, str], deployment: str) -> str | None:
    for name_key, release_key in ((CURRENT_DEPLOYMENT, CURRENT_RELEASE), (PREVIOUS_DEPLOYMENT, PREVIOUS_RELEASE)):
        if tags.get(name_key) == deployment and tags.get(release_key):
            return tags[release_key]
    return None
