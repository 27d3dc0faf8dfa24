"""AciStaging: the container group it asks ACI for, and following it without waiting (fake ACI client)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerGroupIdentity,
    ContainerPropertiesInstanceView,
    ContainerState,
    Event,
    ImageRegistryCredential,
    IpAddress,
    Port,
    ResourceRequests,
    ResourceRequirements,
    UserAssignedIdentities,
)

from functions.domain.refs import Endpoint, ImageRef, ModelRef, Operation, Progress
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.staging import AciStaging, Readiness, dns_label, group_name
from tests.doubles.azure_mgmt import FakeContainerInstanceClient, ScriptedReadiness, StaticCredential

SETTINGS = AzureSettings.from_env(example_env())
IDENTITY = SETTINGS.aci_identity
RELEASE = "rel-build-42"
IMAGE = ImageRef(
    "diabetes-scoring", "7-rel-build-42", "sha256:" + "ab" * 32, "crmlops.azurecr.io/diabetes-scoring:7-rel-build-42"
)
MODEL = ModelRef("diabetes-model", "7", "azureml://models/diabetes-model/versions/7")
# ACI container group names: lowercase alphanumerics and single hyphens, not at either end, <= 63.
GROUP_NAME = re.compile(r"^(?!-)(?!.*--)[a-z0-9-]{1,63}(?<!-)$")
DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


def make_staging(client: FakeContainerInstanceClient, readiness: Readiness | None = None) -> AciStaging:
    return AciStaging(SETTINGS, client, readiness or ScriptedReadiness(True))


def created_group(client: FakeContainerInstanceClient) -> ContainerGroup:
    calls = [c for c in client.calls if c[0] == "begin_create_or_update"]
    assert len(calls) == 1
    group: ContainerGroup = calls[0][3]
    return group


def stored(client: FakeContainerInstanceClient, release_id: str = RELEASE) -> Any:
    """The group as the fake keeps it: what ARM fills in (read-only in the models) can be set here."""
    return client.container_groups.groups[("rg-mlops", group_name(release_id))]


def instance_view(state: str, detail: str, *events: tuple[str, str]) -> ContainerPropertiesInstanceView:
    """A container's instance view as ACI reports it (read-only fields, so set one by one)."""
    view: Any = ContainerPropertiesInstanceView()
    view.current_state = ContainerState()
    view.current_state.state, view.current_state.detail_status = state, detail
    view.events = []
    for name, message in events:
        event: Any = Event()
        event.name, event.message = name, message
        view.events.append(event)
    return view


def score_url(client: FakeContainerInstanceClient) -> str:
    return f"http://{stored(client).ip_address.fqdn}:5001/score"


def old_staging(client: FakeContainerInstanceClient, release_id: str, tags: dict[str, str] | None = None) -> str:
    name = group_name(release_id)
    group = ContainerGroup(
        location="westeurope",
        os_type="Linux",
        containers=[
            Container(
                name="scoring",
                image="crmlops.azurecr.io/diabetes-scoring:1",
                resources=ResourceRequirements(requests=ResourceRequests(cpu=1.0, memory_in_gb=1.5)),
            )
        ],
        tags=tags if tags is not None else {"release_id": release_id, "role": "staging", "managed_by": "mlops"},
    )
    client.container_groups.add(SETTINGS.aci_resource_group, name, group)
    return name


def pending_client() -> FakeContainerInstanceClient:
    """A client whose groups stay "Creating" until the test settles them, as on Azure."""
    client = FakeContainerInstanceClient()
    client.container_groups.settle_at_once = False
    return client


def deleted(client: FakeContainerInstanceClient) -> list[str]:
    return sorted(c[2] for c in client.calls if c[0] == "begin_delete")


# ---- begin: the container group it asks for ---------------------------------------------------


def test_begin_creates_the_container_group_from_the_acr_image() -> None:
    client = FakeContainerInstanceClient()

    make_staging(client).begin_staging(RELEASE, IMAGE, MODEL)

    _, resource_group, name, group = next(c for c in client.calls if c[0] == "begin_create_or_update")
    assert resource_group == "rg-mlops"  # ACI_RESOURCE_GROUP defaults to AZURE_RESOURCE_GROUP
    assert name == group_name(RELEASE)
    assert isinstance(group, ContainerGroup)
    assert group.location == "westeurope"
    assert group.os_type == "Linux"
    assert group.restart_policy == "Always"
    assert group.tags == {"release_id": RELEASE, "role": "staging", "managed_by": "mlops"}
    (container,) = group.containers
    assert isinstance(container, Container)
    assert container.name == "scoring"
    assert container.image == "crmlops.azurecr.io/diabetes-scoring:7-rel-build-42"
    assert isinstance(container.resources, ResourceRequirements)
    assert (container.resources.requests.cpu, container.resources.requests.memory_in_gb) == (1.0, 1.5)
    assert [(p.port, p.protocol) for p in container.ports or []] == [(5001, "TCP")]
    variables = container.environment_variables or []
    env = {v.name: v.value for v in variables}
    assert env["SCORING_MAX_ROWS"] == "10000"
    assert env["MLOPS_RELEASE_ID"] == RELEASE
    assert all(v.secure_value is None for v in variables)


def test_the_image_is_pulled_with_the_managed_identity_not_a_password() -> None:
    client = FakeContainerInstanceClient()

    make_staging(client).begin_staging(RELEASE, IMAGE, MODEL)

    group = created_group(client)
    (credential,) = group.image_registry_credentials or []
    assert isinstance(credential, ImageRegistryCredential)
    assert (credential.server, credential.identity) == ("crmlops.azurecr.io", IDENTITY)
    assert credential.username is None and credential.password is None
    assert isinstance(group.identity, ContainerGroupIdentity)
    assert group.identity.type == "UserAssigned"
    identities = group.identity.user_assigned_identities or {}
    assert list(identities) == [IDENTITY]
    assert isinstance(identities[IDENTITY], UserAssignedIdentities)


def test_the_group_has_a_public_ip_with_a_unique_valid_dns_label() -> None:
    client = FakeContainerInstanceClient()

    make_staging(client).begin_staging(RELEASE, IMAGE, MODEL)

    address = created_group(client).ip_address
    assert isinstance(address, IpAddress)
    assert address.type == "Public"
    assert [(p.protocol, p.port) for p in address.ports] == [("TCP", 5001)]
    assert all(isinstance(p, Port) for p in address.ports)
    assert address.dns_name_label == dns_label(SETTINGS, RELEASE)
    assert DNS_LABEL.match(address.dns_name_label)
    assert address.auto_generated_domain_name_label_scope == "TenantReuse"


def test_the_container_group_serialises_to_the_json_azure_expects() -> None:
    client = FakeContainerInstanceClient()

    make_staging(client).begin_staging(RELEASE, IMAGE, MODEL)

    body = created_group(client).serialize()
    assert body["location"] == "westeurope"
    assert body["tags"] == {"release_id": RELEASE, "role": "staging", "managed_by": "mlops"}
    assert body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}
    properties = body["properties"]
    assert properties["osType"] == "Linux"
    assert properties["restartPolicy"] == "Always"
    assert properties["imageRegistryCredentials"] == [{"server": "crmlops.azurecr.io", "identity": IDENTITY}]
    assert properties["ipAddress"] == {
        "type": "Public",
        "ports": [{"protocol": "TCP", "port": 5001}],
        "dnsNameLabel": dns_label(SETTINGS, RELEASE),
        "autoGeneratedDomainNameLabelScope": "TenantReuse",
    }
    (container,) = properties["containers"]
    assert container["name"] == "scoring"
    assert container["properties"]["image"] == "crmlops.azurecr.io/diabetes-scoring:7-rel-build-42"
    assert container["properties"]["ports"] == [{"protocol": "TCP", "port": 5001}]
    assert container["properties"]["resources"] == {"requests": {"cpu": 1.0, "memoryInGB": 1.5}}
    assert {"name": "SCORING_MAX_ROWS", "value": "10000"} in container["properties"]["environmentVariables"]


def test_the_image_reference_falls_back_to_the_login_server_when_the_location_is_not_a_registry() -> None:
    client = FakeContainerInstanceClient()
    image = ImageRef("diabetes-scoring", "7-rel-build-42", "", "")

    make_staging(client).begin_staging(RELEASE, image, MODEL)

    assert created_group(client).containers[0].image == "crmlops.azurecr.io/diabetes-scoring:7-rel-build-42"


# ---- begin: nothing waits ----------------------------------------------------------------------


def test_begin_sends_the_put_and_returns_the_operation_without_waiting() -> None:
    client = pending_client()
    readiness = ScriptedReadiness(True)

    operation = make_staging(client, readiness).begin_staging(RELEASE, IMAGE, MODEL)

    assert operation == Operation("staging", RELEASE, {"resource_group": "rg-mlops", "group": group_name(RELEASE)})
    assert client.operations() == ["begin_create_or_update"]  # no GET, no probe, no cleanup yet
    assert client.container_groups.waited() == []
    assert readiness.urls == []
    assert json.loads(json.dumps(operation.handle)) == operation.handle  # kept on the release as JSON


def test_beginning_the_same_release_again_puts_the_same_group() -> None:
    client = FakeContainerInstanceClient()
    staging = make_staging(client)

    first = staging.begin_staging(RELEASE, IMAGE, MODEL)
    assert staging.begin_staging(RELEASE, IMAGE, MODEL) == first

    assert client.operations() == ["begin_create_or_update", "begin_create_or_update"]
    assert {name for _, name in client.container_groups.groups} == {group_name(RELEASE)}


# ---- follow: one look each time ----------------------------------------------------------------


def test_follow_is_running_while_the_group_is_being_created() -> None:
    client = pending_client()
    readiness = ScriptedReadiness(True)
    staging = make_staging(client, readiness)
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    client.calls.clear()

    progress = staging.follow(operation)

    assert progress.state == "running" and not progress.finished
    assert f"waiting for staging container group {group_name(RELEASE)} to provision" in progress.detail
    assert "provisioning Creating" in progress.detail
    assert client.operations() == ["get"]
    assert readiness.urls == []  # no probe before the group is provisioned


def test_follow_probes_once_and_is_running_until_the_server_answers() -> None:
    client = pending_client()
    readiness = ScriptedReadiness(False, False, True)
    staging = make_staging(client, readiness)
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    client.container_groups.settle()
    health = score_url(client).removesuffix("score")

    assert staging.follow(operation).detail.startswith(f"waiting for {health} to answer 200: provisioning Succeeded")
    assert staging.follow(operation).state == "running"
    assert readiness.urls == [health, health]  # one probe per look, no retry loop inside
    assert "list_by_resource_group" not in client.operations()  # no cleanup before it is ready

    progress = staging.follow(operation)

    endpoint = Endpoint(name=group_name(RELEASE), scoring_url=score_url(client), version=RELEASE)
    assert progress == Progress("succeeded", f"{health} answered 200", endpoint=endpoint)
    assert score_url(client).startswith("http://mlops-rel-build-42-")
    assert score_url(client).endswith(".westeurope.azurecontainer.io:5001/score")
    assert len(readiness.urls) == 3


def test_a_follower_in_another_process_follows_by_the_handle_alone() -> None:
    client = FakeContainerInstanceClient()
    operation = make_staging(client).begin_staging(RELEASE, IMAGE, MODEL)
    again = Operation(**json.loads(json.dumps(operation.__dict__)))

    progress = make_staging(client).follow(again)

    assert progress.state == "succeeded" and progress.endpoint is not None
    assert progress.endpoint.version == RELEASE


def test_a_group_that_failed_to_provision_fails_with_what_azure_says() -> None:
    client = pending_client()
    staging = make_staging(client)
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    client.container_groups.settle("Failed")
    stored(client).containers[0].instance_view = instance_view(
        "Waiting", "ImagePullBackOff", ("Failed", "unauthorized: the identity cannot pull diabetes-scoring")
    )

    progress = staging.follow(operation)

    assert progress.state == "failed" and progress.finished and progress.endpoint is None
    assert progress.detail == (
        f"staging container group {group_name(RELEASE)} failed to provision: provisioning Failed; "
        "container scoring Waiting (ImagePullBackOff); event Failed: unauthorized: the identity cannot pull "
        "diabetes-scoring"
    )


def test_a_provisioned_group_without_an_fqdn_fails() -> None:
    client = FakeContainerInstanceClient()
    client.container_groups.assign_fqdn = False
    readiness = ScriptedReadiness(True)
    staging = make_staging(client, readiness)

    progress = staging.follow(staging.begin_staging(RELEASE, IMAGE, MODEL))

    assert progress == Progress(
        "failed", f"staging container group {group_name(RELEASE)} has no public FQDN (ip_address.fqdn is empty)"
    )
    assert readiness.urls == []


def test_a_group_that_is_gone_fails() -> None:
    client = FakeContainerInstanceClient()
    staging = make_staging(client)
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    client.container_groups.groups.clear()  # deleted by hand in the portal

    progress = staging.follow(operation)

    assert progress == Progress("failed", f"staging container group {group_name(RELEASE)} does not exist")


def test_follow_refuses_an_operation_it_did_not_begin() -> None:
    with pytest.raises(ValueError, match="'traffic'"):
        make_staging(FakeContainerInstanceClient()).follow(Operation("traffic", RELEASE, {}))


# ---- cleanup once ready --------------------------------------------------------------------------


def test_older_staging_groups_start_being_deleted_once_the_new_one_is_ready() -> None:
    client = FakeContainerInstanceClient()
    older = [old_staging(client, "rel-old-1"), old_staging(client, "rel-old-2")]
    foreign = old_staging(client, "rel-foreign", tags={"release_id": "rel-foreign", "role": "staging"})
    production = old_staging(
        client, "rel-prod", tags={"release_id": "rel-prod", "role": "production", "managed_by": "mlops"}
    )
    untagged = old_staging(client, "rel-untagged", tags={})
    staging = make_staging(client)
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    assert "begin_delete" not in client.operations()

    assert staging.follow(operation).state == "succeeded"

    assert client.operations()[1:3] == ["get", "list_by_resource_group"]
    assert deleted(client) == sorted(older)
    assert client.container_groups.waited() == []  # the deletes are started, not waited for
    remaining = {name for _, name in client.container_groups.groups}
    assert remaining == {group_name(RELEASE), foreign, production, untagged}


def test_a_group_still_coming_up_is_not_cleaned_up() -> None:
    client = pending_client()
    staging = make_staging(client)
    newer = staging.begin_staging("rel-newer", IMAGE, MODEL)  # begun later, still "Creating"
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    stored(client).provisioning_state = "Succeeded"

    assert staging.follow(operation).state == "succeeded"

    assert deleted(client) == []
    assert staging.follow(newer).state == "running"


def test_a_failed_cleanup_does_not_fail_the_staging() -> None:
    client = FakeContainerInstanceClient()
    old = old_staging(client, "rel-old")
    client.container_groups.delete_errors[old] = HttpResponseError(message="conflict")
    staging = make_staging(client)

    assert staging.follow(staging.begin_staging(RELEASE, IMAGE, MODEL)).state == "succeeded"


def test_a_failed_listing_during_cleanup_does_not_fail_the_staging() -> None:
    client = FakeContainerInstanceClient()
    client.container_groups.list_error = HttpResponseError(message="throttled")
    staging = make_staging(client)

    assert staging.follow(staging.begin_staging(RELEASE, IMAGE, MODEL)).state == "succeeded"


# ---- remove ------------------------------------------------------------------------------------


def test_remove_staging_starts_deleting_the_releases_group_without_waiting() -> None:
    client = FakeContainerInstanceClient()
    staging = make_staging(client)
    staging.begin_staging(RELEASE, IMAGE, MODEL)

    staging.remove_staging(RELEASE)

    assert client.calls[-1] == ("begin_delete", "rg-mlops", group_name(RELEASE))
    assert client.container_groups.waited() == []
    assert client.container_groups.groups == {}


def test_remove_staging_is_idempotent() -> None:
    client = FakeContainerInstanceClient()
    staging = make_staging(client)

    staging.remove_staging(RELEASE)  # ARM answers 204: nothing there
    client.container_groups.missing_delete_raises = True
    staging.remove_staging(RELEASE)  # or 404: still fine

    assert [c[0] for c in client.calls] == ["begin_delete", "begin_delete"]


def test_remove_staging_lets_other_errors_through() -> None:
    client = FakeContainerInstanceClient()
    client.container_groups.delete_errors[group_name(RELEASE)] = HttpResponseError(message="forbidden")

    with pytest.raises(HttpResponseError, match="forbidden"):
        make_staging(client).remove_staging(RELEASE)


# ---- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "release_id",
    ["rel-1", "rel-20261126-1", "rel-" + "a" * 44, "rel-a--b", "rel-build_42", "rel-UPPER", "rel-x-12345678"],
)
def test_names_are_valid_for_aci_and_stable(release_id: str) -> None:
    name, label = group_name(release_id), dns_label(SETTINGS, release_id)

    assert GROUP_NAME.match(name), name
    assert DNS_LABEL.match(label), label
    assert group_name(release_id) == name and dns_label(SETTINGS, release_id) == label


def test_names_of_different_releases_differ_even_when_they_clean_up_alike() -> None:
    assert group_name("rel-a-b") != group_name("rel-a--b")
    assert dns_label(SETTINGS, "rel-a-b") != dns_label(SETTINGS, "rel-a--b")


def test_the_dns_label_depends_on_the_subscription_and_resource_group() -> None:
    other = AzureSettings.from_env({**example_env(), "ACI_RESOURCE_GROUP": "rg-other"})

    assert dns_label(SETTINGS, RELEASE) != dns_label(other, RELEASE)


def test_from_settings_builds_the_real_client_without_network() -> None:
    staging = AciStaging.from_settings(SETTINGS, credential=StaticCredential(), cpu=2.0)

    assert type(staging.aci_client).__name__ == "ContainerInstanceManagementClient"
    assert staging.cpu == 2.0
    assert staging.resource_group == "rg-mlops"
