"""Production on AKS: an Azure ML Kubernetes online endpoint, one deployment per release, blue/green.

``deploy_production`` creates the release's deployment beside the one serving now (the
endpoint's traffic is untouched while it provisions; Azure ML waits for the container's
readiness probe before it reports success), then gives it 100% of the traffic. The deployment
that served before stays in place with 0% for rollback; deployments older than that are deleted.
``rollback_production`` gives the traffic back to that previous deployment and deletes the
failed one.

What served before is recorded on the endpoint's own tags (``current_deployment``,
``current_release``, ``previous_deployment``, ``previous_release``), so a restarted Function
App, or an operator in the portal, sees the same history. Each deployment carries the
``release_id`` tag. The endpoint uses key auth; the tester fetches the key
(``online_endpoints.get_keys``) when it calls the endpoint.

Deployment names come from the release id (readable prefix + hash): the same release always
maps to the same deployment, so a retried promotion updates it instead of starting another.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

from functions.domain.refs import Endpoint, ImageRef, ModelRef

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
# Endpoint tags: the traffic history rollback reads.
CURRENT_DEPLOYMENT = "current_deployment"
CURRENT_RELEASE = "current_release"
PREVIOUS_DEPLOYMENT = "previous_deployment"
PREVIOUS_RELEASE = "previous_release"
RELEASE_TAG = "release_id"  # on each deployment
HISTORY_TAGS = (CURRENT_DEPLOYMENT, CURRENT_RELEASE, PREVIOUS_DEPLOYMENT, PREVIOUS_RELEASE)
DEFAULT_LRO_TIMEOUT_S = 1800.0
_NAME_PREFIX_MAX = 23  # + "-" + 8 hex = 32, Azure ML's limit for deployment names


class ProductionError(RuntimeError):
    """Production could not be changed; the message says what and why."""


def deployment_name(release_id: str) -> str:
    """The release's deployment name: 3-32 chars, lowercase letters, digits and '-', starting with a
    letter, ending with a letter or digit (Azure ML's rule); the hash keeps it unique per release."""
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
        lro_timeout_s: float = DEFAULT_LRO_TIMEOUT_S,
    ) -> None:
        """``instance_type`` None uses the cluster's default instance type (instance types are
        CRDs the cluster admin defines; ``defaultinstancetype`` always exists). ``resources`` None
        takes the instance type's requests/limits."""
        self.settings = settings
        self.ml_client = ml_client
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.resources = resources
        self.lro_timeout_s = lro_timeout_s

    @property
    def endpoint_name(self) -> str:
        return self.settings.endpoint

    def deploy_production(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint:
        endpoint = self._ensure_endpoint()
        new = deployment_name(release_id)
        serving = _serving(endpoint)
        tags = dict(endpoint.tags or {})

        self._wait(
            self.ml_client.online_deployments.begin_create_or_update(self._deployment(new, release_id, image, model)),
            f"deployment {new} of release {release_id}",
        )
        deployments = {d.name: d for d in self.ml_client.online_deployments.list(endpoint_name=self.endpoint_name)}

        previous: str | None
        if serving is not None and serving != new:
            previous = serving
        else:  # the first deployment, or a retry after the switch: the history says what came before
            previous = tags.get(PREVIOUS_DEPLOYMENT)
            if previous == new or previous not in deployments:
                previous = None
        history = {CURRENT_DEPLOYMENT: new, CURRENT_RELEASE: release_id}
        if previous:
            history |= {PREVIOUS_DEPLOYMENT: previous, PREVIOUS_RELEASE: _release_of(previous, deployments, tags)}
        updated = self._route(endpoint, new, history)
        logger.info(
            "production endpoint %s serves release %s (deployment %s); previous: %s",
            self.endpoint_name,
            release_id,
            new,
            previous or "none",
        )

        for name, deployment in deployments.items():
            if name in (new, previous):
                continue
            if RELEASE_TAG in (deployment.tags or {}):
                self._delete(name)
            else:
                logger.info("leaving deployment %s alone: no release made it", name)
        return self._endpoint(updated, release_id)

    def rollback_production(self, release_id: str) -> Endpoint | None:
        failed = deployment_name(release_id)
        endpoint = self._get_endpoint()
        if endpoint is None:
            return None
        tags = dict(endpoint.tags or {})
        serving = _serving(endpoint)
        previous = tags.get(PREVIOUS_DEPLOYMENT)
        if serving != failed:
            # Already rolled back (a retried call) or never switched to: only make sure it is not left behind.
            if failed in endpoint.traffic and failed != previous:
                self._delete(failed)
            return self._endpoint(endpoint, _from_history(tags, serving) or serving) if serving else None
        if not previous:
            logger.warning("release %s failed in production and there is no previous deployment", release_id)
            return None
        if previous not in endpoint.traffic:  # get() lists every deployment, at 0% when it has no traffic
            logger.warning("cannot roll back release %s: previous deployment %s no longer exists", release_id, previous)
            return None
        previous_release = tags.get(PREVIOUS_RELEASE) or previous
        updated = self._route(endpoint, previous, {CURRENT_DEPLOYMENT: previous, CURRENT_RELEASE: previous_release})
        self._delete(failed)
        logger.warning(
            "production endpoint %s rolled back from release %s to %s", self.endpoint_name, release_id, previous_release
        )
        return self._endpoint(updated, previous_release)

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

    def _ensure_endpoint(self) -> KubernetesOnlineEndpoint:
        endpoint = self._get_endpoint()
        if endpoint is not None:
            return endpoint
        from azure.ai.ml.entities import KubernetesOnlineEndpoint

        logger.info("creating online endpoint %s on %s", self.endpoint_name, self.settings.aks_compute)
        created = KubernetesOnlineEndpoint(
            name=self.endpoint_name,
            compute=self.settings.aks_compute,
            auth_mode="key",
            description="Production scoring endpoint; deployments managed by the MLOps release orchestrator",
        )
        self._wait(self.ml_client.online_endpoints.begin_create_or_update(created), f"endpoint {self.endpoint_name}")
        # Read it back: the create response has no deployments, get() fills in the traffic map.
        endpoint = self._get_endpoint()
        if endpoint is None:
            raise ProductionError(f"online endpoint {self.endpoint_name} was created but cannot be read back")
        return endpoint

    def _deployment(self, name: str, release_id: str, image: ImageRef, model: ModelRef) -> Any:
        from azure.ai.ml.entities import Environment, KubernetesOnlineDeployment

        tags = {RELEASE_TAG: release_id, "model": f"{model.name}:{model.version}", "image": image.reference}
        if image.digest:
            tags["image_digest"] = image.digest
        return KubernetesOnlineDeployment(
            name=name,
            endpoint_name=self.endpoint_name,
            description=f"release {release_id}: {model.name}:{model.version} in {image.reference}",
            model=model_asset(model),
            environment=Environment(
                image=image_uri(image, self.settings.login_server), inference_config=INFERENCE_CONFIG
            ),
            instance_type=self.instance_type,
            instance_count=self.instance_count,
            resources=self.resources,
            tags=tags,
        )

    def _route(self, endpoint: KubernetesOnlineEndpoint, deployment: str, history: dict[str, str]) -> Any:
        """All traffic to ``deployment``, nothing mirrored, and the history in the endpoint's tags."""
        endpoint.traffic = {deployment: 100}
        endpoint.mirror_traffic = {}
        endpoint.tags = {key: value for key, value in (endpoint.tags or {}).items() if key not in HISTORY_TAGS}
        endpoint.tags.update(history)
        return self._wait(
            self.ml_client.online_endpoints.begin_create_or_update(endpoint),
            f"traffic switch of {self.endpoint_name} to {deployment}",
        )

    def _delete(self, name: str) -> None:
        """Start deleting a deployment without waiting (it serves no traffic); a failure is logged,
        and the next deploy_production deletes what was left."""
        try:
            self.ml_client.online_deployments.begin_delete(name=name, endpoint_name=self.endpoint_name)
        except Exception as exc:
            logger.warning("could not delete deployment %s of %s: %s", name, self.endpoint_name, exc)
        else:
            logger.info("deleting deployment %s of %s", name, self.endpoint_name)

    def _wait(self, poller: Any, what: str) -> Any:
        result = poller.result(timeout=self.lro_timeout_s)
        if not poller.done():
            raise ProductionError(f"{what} did not finish within {self.lro_timeout_s:.0f} s")
        return result

    def _endpoint(self, endpoint: Any, release_id: str) -> Endpoint:
        scoring_uri = getattr(endpoint, "scoring_uri", None)
        if not scoring_uri:
            fresh = self._get_endpoint()
            scoring_uri = getattr(fresh, "scoring_uri", None) or ""
        return Endpoint(name=self.endpoint_name, scoring_url=scoring_uri, version=release_id)


def _serving(endpoint: Any) -> str | None:
    """The deployment with the most traffic, if any has some."""
    traffic = {name: int(share or 0) for name, share in (endpoint.traffic or {}).items()}
    name, share = max(traffic.items(), key=lambda item: item[1], default=(None, 0))
    return name if share > 0 else None


def _release_of(name: str, deployments: dict[str, Any], tags: dict[str, str]) -> str:
    """The release a deployment serves: its release_id tag, else the endpoint's history, else its name."""
    deployment = deployments.get(name)
    release = (deployment.tags or {}).get(RELEASE_TAG) if deployment is not None else None
    return str(release or _from_history(tags, name) or name)


def _from_history(tags: dict[str, str], deployment: str) -> str | None:
    for name_key, release_key in ((CURRENT_DEPLOYMENT, CURRENT_RELEASE), (PREVIOUS_DEPLOYMENT, PREVIOUS_RELEASE)):
        if tags.get(name_key) == deployment and tags.get(release_key):
            return tags[release_key]
    return None
