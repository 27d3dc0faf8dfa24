"""Staging on Azure Container Instances: one container group per release, from the ACR image.

``AciStaging.begin_staging`` creates (or updates) the release's container group with
azure-mgmt-containerinstance and returns at once: one ``scoring`` container from
``<login server>/<repository>:<tag>``, pulled with the user-assigned managed identity
``ACI_IDENTITY`` (it needs AcrPull on the registry; no registry password anywhere), a public IP
with a DNS label on port 5001 where azmlinfsrv listens. ``follow`` looks once: the group's
provisioning state, then one GET of ``http://<fqdn>:5001/`` (the server's health route). When it
answers 200 the staging succeeded with the ``/score`` URL for the smoke and integration tests, and
the staging groups of older releases start being deleted. ``remove_staging`` starts deleting the
release's group. Nothing waits: the service follows the operation and owns its timeout.

Every group it creates is tagged ``role=staging``, ``release_id=<id>`` and ``managed_by=mlops``;
only groups carrying all three are ever deleted as "older staging", so other container groups
in the same resource group are left alone.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from functions.domain.refs import Endpoint, ImageRef, ModelRef, Operation, Progress
from platforms.azure.settings import AzureSettings
from platforms.common.readiness import http_ok

logger = logging.getLogger("mlops.azure.staging")

SCORING_PORT = 5001
CONTAINER_NAME = "scoring"
ROLE = "staging"
MANAGED_BY = "mlops"
GROUP_PREFIX = "staging"
DEFAULT_CPU = 1.0
DEFAULT_MEMORY_GB = 1.5
SCORING_MAX_ROWS = "10000"
DNS_LABEL_SCOPE = "TenantReuse"
READINESS_REQUEST_TIMEOUT_S = 5.0  # follow's one probe: quick, whatever the group does
STAGING = "staging"  # the Operation kind
# Provisioning states of a group still coming up: it may be a newer release's, begun after this
# one succeeded (staging is followed, not waited for), so cleanup leaves it alone.
_IN_FLIGHT = ("pending", "creating", "updating", "repairing")
_FAILED = ("failed", "canceled")
# Container group names: lowercase letters, digits and single hyphens, 1..63 characters.
MAX_NAME = 63

Readiness = Callable[[str], bool]


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")


def group_name(release_id: str) -> str:
    """The release's container group: ``staging-<release id>-<hash>``, a valid, stable ACI name.

    The short hash of the exact release id keeps two ids that clean up to the same text apart.
    """
    digest = hashlib.sha256(release_id.encode()).hexdigest()[:8]
    room = MAX_NAME - len(GROUP_PREFIX) - len(digest) - 2
    slug = _slug(release_id)[:room].strip("-")
    return "-".join(part for part in (GROUP_PREFIX, slug, digest) if part)


def dns_label(settings: AzureSettings, release_id: str) -> str:
    """A DNS name label unique to this subscription, resource group and release (3..63 chars,
    starts with a letter, ends with a letter or digit)."""
    scope = f"{settings.subscription_id}/{settings.aci_resource_group}/{release_id}".lower()
    digest = hashlib.sha256(scope.encode()).hexdigest()[:10]
    room = MAX_NAME - len("mlops-") - len(digest) - 1
    slug = _slug(release_id)[:room].strip("-")
    return "-".join(part for part in ("mlops", slug, digest) if part)


class AciStaging:
    """``begin_staging`` / ``remove_staging`` and ``follow`` of the Deployer port, on Azure Container Instances."""

    def __init__(
        self,
        settings: AzureSettings,
        aci_client: Any,
        readiness: Readiness | None = None,
        *,
        cpu: float = DEFAULT_CPU,
        memory_in_gb: float = DEFAULT_MEMORY_GB,
    ) -> None:
        self.settings = settings
        self.aci_client = aci_client
        self.readiness = readiness or partial(http_ok, timeout_s=READINESS_REQUEST_TIMEOUT_S)
        self.cpu = cpu
        self.memory_in_gb = memory_in_gb

    @classmethod
    def from_settings(cls, settings: AzureSettings, credential: Any = None, **kwargs: Any) -> AciStaging:
        from azure.mgmt.containerinstance import ContainerInstanceManagementClient

        from platforms.azure.clients import credential_or_default

        client = ContainerInstanceManagementClient(credential_or_default(credential), settings.subscription_id)
        return cls(settings, client, **kwargs)

    @property
    def resource_group(self) -> str:
        return self.settings.aci_resource_group

    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation:
        name = group_name(release_id)
        spec = self.container_group(release_id, image, model)
        logger.info("creating staging container group %s from %s", name, spec.containers[0].image)
        # The PUT is accepted when begin_create_or_update returns; follow() sees the group come up.
        self.aci_client.container_groups.begin_create_or_update(self.resource_group, name, spec)
        return Operation(STAGING, release_id, {"resource_group": self.resource_group, "group": name})

    def follow(self, operation: Operation) -> Progress:
        """One look at the group and, once it is provisioned, one readiness probe."""
        from azure.core.exceptions import ResourceNotFoundError

        if operation.kind != STAGING:
            raise ValueError(f"ACI staging does not follow {operation.kind!r} operations")
        release_id = operation.deployment
        name = str(operation.handle.get("group") or group_name(release_id))
        resource_group = str(operation.handle.get("resource_group") or self.resource_group)
        try:
            group = self.aci_client.container_groups.get(resource_group, name)
        except ResourceNotFoundError:
            return Progress("failed", f"staging container group {name} does not exist")
        state = str(getattr(group, "provisioning_state", "") or "").lower()
        if state in _FAILED:
            return Progress("failed", f"staging container group {name} failed to provision: {_describe(group)}")
        if state != "succeeded":
            return Progress("running", f"waiting for staging container group {name} to provision: {_describe(group)}")
        fqdn = _fqdn(group)
        if not fqdn:  # the FQDN comes with the public IP at creation; a provisioned group without one keeps none
            return Progress("failed", f"staging container group {name} has no public FQDN (ip_address.fqdn is empty)")
        url = f"http://{fqdn}:{SCORING_PORT}/"
        if not self.readiness(url):
            return Progress("running", f"waiting for {url} to answer 200: {_describe(group)}")
        logger.info("staging %s ready at %s", name, url)
        self._remove_older(release_id)
        endpoint = Endpoint(name=name, scoring_url=f"{url}score", version=release_id)
        return Progress("succeeded", f"{url} answered 200", endpoint=endpoint)

    def remove_staging(self, release_id: str) -> None:
        """Start deleting the release's container group; one that does not exist (any more) is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        name = group_name(release_id)
        try:
            # The DELETE is accepted when begin_delete returns; nobody needs to wait for it to finish.
            self.aci_client.container_groups.begin_delete(self.resource_group, name)
        except ResourceNotFoundError:
            logger.info("staging container group %s was already gone", name)
            return
        logger.info("deleting staging container group %s", name)

    def container_group(self, release_id: str, image: ImageRef, model: ModelRef) -> Any:
        """The ``ContainerGroup`` to create for the release (azure-mgmt-containerinstance models)."""
        from azure.mgmt.containerinstance.models import (
            Container,
            ContainerGroup,
            ContainerGroupIdentity,
            ContainerPort,
            EnvironmentVariable,
            ImageRegistryCredential,
            IpAddress,
            Port,
            ResourceRequests,
            ResourceRequirements,
            UserAssignedIdentities,
        )

        identity = self.settings.aci_identity
        container = Container(
            name=CONTAINER_NAME,
            image=self.image_name(image),
            resources=ResourceRequirements(requests=ResourceRequests(cpu=self.cpu, memory_in_gb=self.memory_in_gb)),
            ports=[ContainerPort(port=SCORING_PORT, protocol="TCP")],
            environment_variables=[
                EnvironmentVariable(name="SCORING_MAX_ROWS", value=SCORING_MAX_ROWS),
                EnvironmentVariable(name="MLOPS_RELEASE_ID", value=release_id),
                EnvironmentVariable(name="MLOPS_MODEL", value=f"{model.name}:{model.version}"),
            ],
        )
        return ContainerGroup(
            location=self.settings.aci_location,
            containers=[container],
            os_type="Linux",
            restart_policy="Always",
            ip_address=IpAddress(
                type="Public",
                ports=[Port(protocol="TCP", port=SCORING_PORT)],
                dns_name_label=dns_label(self.settings, release_id),
                # The FQDN gets a hash only this tenant can reproduce, so a deleted release's
                # name cannot be taken over by someone else; the FQDN is read back, not guessed.
                auto_generated_domain_name_label_scope=DNS_LABEL_SCOPE,
            ),
            image_registry_credentials=[ImageRegistryCredential(server=self.settings.login_server, identity=identity)],
            identity=ContainerGroupIdentity(
                type="UserAssigned", user_assigned_identities={identity: UserAssignedIdentities()}
            ),
            tags={"release_id": release_id, "role": ROLE, "managed_by": MANAGED_BY},
        )

    def image_name(self, image: ImageRef) -> str:
        """``<login server>/<repository>:<tag>``: the image's location when it is in this registry."""
        if image.location.startswith(f"{self.settings.login_server}/"):
            return image.location
        return f"{self.settings.login_server}/{image.repository}:{image.tag}"

    def _remove_older(self, release_id: str) -> None:
        """Start deleting the staging groups of other releases (none still coming up); a failure is
        logged, not raised."""
        try:
            groups = list(self.aci_client.container_groups.list_by_resource_group(self.resource_group))
        except Exception:  # cleanup must not fail the new release's staging
            logger.warning("could not list container groups in %s to clean up", self.resource_group, exc_info=True)
            return
        for group in groups:
            tags = getattr(group, "tags", None) or {}
            other = tags.get("release_id")
            if tags.get("role") != ROLE or tags.get("managed_by") != MANAGED_BY or not other or other == release_id:
                continue
            if str(getattr(group, "provisioning_state", "") or "").lower() in _IN_FLIGHT:
                logger.info("leaving staging group %s (release %s) alone: it is still coming up", group.name, other)
                continue
            try:
                # The DELETE is accepted when begin_delete returns; no need to wait for it to finish.
                self.aci_client.container_groups.begin_delete(self.resource_group, group.name)
                logger.info("deleting older staging group %s (release %s)", group.name, other)
            except Exception:  # cleanup must not fail the new release's staging
                logger.warning("could not delete older staging group %s", group.name, exc_info=True)


def _describe(group: Any) -> str:
    """What Azure says about the group: provisioning state, container state, latest events."""
    parts = [f"provisioning {getattr(group, 'provisioning_state', None) or 'unknown'}"]
    view = getattr(group, "instance_view", None)
    if view is not None and getattr(view, "state", None):
        parts.append(f"group {view.state}")
    for container in getattr(group, "containers", None) or []:
        current = getattr(getattr(container, "instance_view", None), "current_state", None)
        if current is not None:
            detail = f" ({current.detail_status})" if getattr(current, "detail_status", None) else ""
            parts.append(f"container {container.name} {current.state}{detail}")
        events = getattr(getattr(container, "instance_view", None), "events", None) or []
        parts.extend(f"event {event.name}: {event.message}" for event in events[-3:] if event.message)
    return "; ".join(parts)


def _fqdn(group: Any) -> str:
    address = getattr(group, "ip_address", None)
    return str(getattr(address, "fqdn", None) or "")
