"""AciStaging: the container group it asks ACI for, readiness polling, cleanup (fake ACI client)."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerGroupIdentity,
    ImageRegistryCredential,
    IpAddress,
    Port,
    ResourceRequests,
    ResourceRequirements,
    UserAssignedIdentities,
)

from functions.domain.refs import Endpoint, ImageRef, ModelRef
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.staging import AciStaging, StagingError, dns_label, group_name
from tests.doubles.azure_mgmt import FakeClock, FakeContainerInstanceClient, ScriptedReadiness, StaticCredential

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


def make_staging(client: FakeContainerInstanceClient, readiness=None, clock: FakeClock | None = None, **kwargs):
    clock = clock or FakeClock()
    return AciStaging(
        SETTINGS,
        client,
        readiness or ScriptedReadiness(True),
        poll_interval_s=5,
        timeout_s=60,
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def created_group(client: FakeContainerInstanceClient) -> ContainerGroup:
    calls = [c for c in client.calls if c[0] == "begin_create_or_update"]
    assert len(calls) == 1
    return calls[0][3]


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


# ---- deploy ------------------------------------------------------------------------------------


def test_deploy_creates_the_container_group_from_the_acr_image():
    client = FakeContainerInstanceClient()

    make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)

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


def test_the_image_is_pulled_with_the_managed_identity_not_a_password():
    client = FakeContainerInstanceClient()

    make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)

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


def test_the_group_has_a_public_ip_with_a_unique_valid_dns_label():
    client = FakeContainerInstanceClient()

    make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)

    address = created_group(client).ip_address
    assert isinstance(address, IpAddress)
    assert address.type == "Public"
    assert [(p.protocol, p.port) for p in address.ports] == [("TCP", 5001)]
    assert all(isinstance(p, Port) for p in address.ports)
    assert address.dns_name_label == dns_label(SETTINGS, RELEASE)
    assert DNS_LABEL.match(address.dns_name_label)
    assert address.auto_generated_domain_name_label_scope == "TenantReuse"


def test_the_container_group_serialises_to_the_json_azure_expects():
    client = FakeContainerInstanceClient()

    make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)

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


def test_deploy_returns_the_score_url_on_the_groups_fqdn_once_ready():
    client = FakeContainerInstanceClient()
    readiness = ScriptedReadiness(True)

    endpoint = make_staging(client, readiness).deploy_staging(RELEASE, IMAGE, MODEL)

    fqdn = client.container_groups.groups[("rg-mlops", group_name(RELEASE))].ip_address.fqdn
    assert fqdn.endswith(".westeurope.azurecontainer.io")
    assert endpoint == Endpoint(name=group_name(RELEASE), scoring_url=f"http://{fqdn}:5001/score", version=RELEASE)
    assert readiness.urls == [f"http://{fqdn}:5001/"]


def test_the_image_reference_falls_back_to_the_login_server_when_the_location_is_not_a_registry():
    client = FakeContainerInstanceClient()
    image = ImageRef("diabetes-scoring", "7-rel-build-42", "", "")

    make_staging(client).deploy_staging(RELEASE, image, MODEL)

    assert created_group(client).containers[0].image == "crmlops.azurecr.io/diabetes-scoring:7-rel-build-42"


def test_the_fqdn_is_read_again_when_the_create_answer_lacks_it():
    client = FakeContainerInstanceClient()
    client.container_groups.assign_fqdn = False
    staging = make_staging(client)

    with pytest.raises(StagingError, match="no public FQDN"):
        staging.deploy_staging(RELEASE, IMAGE, MODEL)
    assert client.operations()[:2] == ["begin_create_or_update", "get"]


def test_a_group_that_failed_to_provision_is_an_error_with_the_diagnosis():
    client = FakeContainerInstanceClient()
    client.container_groups.provisioning_state = "Failed"

    with pytest.raises(StagingError, match=r"failed to provision: provisioning Failed"):
        make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)


# ---- readiness ---------------------------------------------------------------------------------


def test_readiness_is_polled_until_the_server_answers():
    client = FakeContainerInstanceClient()
    clock = FakeClock()
    readiness = ScriptedReadiness(False, False, False, True)

    make_staging(client, readiness, clock).deploy_staging(RELEASE, IMAGE, MODEL)

    assert len(readiness.urls) == 4
    assert clock.sleeps == [5, 5, 5]


def test_readiness_timeout_is_a_clear_error_naming_the_group_url_and_state():
    client = FakeContainerInstanceClient()
    clock = FakeClock()
    readiness = ScriptedReadiness(False)
    old = old_staging(client, "rel-old")

    with pytest.raises(StagingError) as raised:
        make_staging(client, readiness, clock).deploy_staging(RELEASE, IMAGE, MODEL)

    message = str(raised.value)
    assert group_name(RELEASE) in message
    assert ":5001/" in message and "within 60 s" in message
    assert "provisioning Succeeded" in message
    assert clock.now - 1000.0 == pytest.approx(60)  # gave up at the deadline, not before
    assert len(readiness.urls) == 13  # at 0, 5, ..., 60 s
    # The previous staging is left alone when the new one did not come up.
    assert ("rg-mlops", old) in client.container_groups.groups
    assert "begin_delete" not in client.operations()


# ---- cleanup -----------------------------------------------------------------------------------


def test_older_staging_groups_are_removed_after_the_new_one_is_ready():
    client = FakeContainerInstanceClient()
    older = [old_staging(client, "rel-old-1"), old_staging(client, "rel-old-2")]
    foreign = old_staging(client, "rel-foreign", tags={"release_id": "rel-foreign", "role": "staging"})
    production = old_staging(
        client, "rel-prod", tags={"release_id": "rel-prod", "role": "production", "managed_by": "mlops"}
    )
    untagged = old_staging(client, "rel-untagged", tags={})

    make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)

    operations = client.operations()
    assert operations[0] == "begin_create_or_update"
    assert operations.index("list_by_resource_group") > 0
    deleted = sorted(c[2] for c in client.calls if c[0] == "begin_delete")
    assert deleted == sorted(older)
    remaining = {name for _, name in client.container_groups.groups}
    assert remaining == {group_name(RELEASE), foreign, production, untagged}


def test_redeploying_the_same_release_keeps_its_group():
    client = FakeContainerInstanceClient()
    staging = make_staging(client)

    staging.deploy_staging(RELEASE, IMAGE, MODEL)
    staging.deploy_staging(RELEASE, IMAGE, MODEL)

    assert "begin_delete" not in client.operations()
    assert {name for _, name in client.container_groups.groups} == {group_name(RELEASE)}


def test_a_failed_cleanup_does_not_fail_the_deployment():
    client = FakeContainerInstanceClient()
    old = old_staging(client, "rel-old")
    client.container_groups.delete_errors[old] = HttpResponseError(message="conflict")

    endpoint = make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL)

    assert endpoint.version == RELEASE


# ---- remove ------------------------------------------------------------------------------------


def test_remove_staging_deletes_the_releases_group_and_waits_for_it():
    client = FakeContainerInstanceClient()
    staging = make_staging(client)
    staging.deploy_staging(RELEASE, IMAGE, MODEL)

    staging.remove_staging(RELEASE)

    assert client.calls[-1] == ("begin_delete", "rg-mlops", group_name(RELEASE))
    assert client.container_groups.delete_pollers[-1].waited
    assert client.container_groups.groups == {}


def test_remove_staging_is_idempotent():
    client = FakeContainerInstanceClient()
    staging = make_staging(client)

    staging.remove_staging(RELEASE)  # ARM answers 204: nothing there
    client.container_groups.missing_delete_raises = True
    staging.remove_staging(RELEASE)  # or 404: still fine

    assert [c[0] for c in client.calls] == ["begin_delete", "begin_delete"]


def test_remove_staging_lets_other_errors_through():
    client = FakeContainerInstanceClient()
    client.container_groups.delete_errors[group_name(RELEASE)] = HttpResponseError(message="forbidden")

    with pytest.raises(HttpResponseError, match="forbidden"):
        make_staging(client).remove_staging(RELEASE)


# ---- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "release_id",
    ["rel-1", "rel-20261126-1", "rel-" + "a" * 44, "rel-a--b", "rel-build_42", "rel-UPPER", "rel-x-12345678"],
)
def test_names_are_valid_for_aci_and_stable(release_id: str):
    name, label = group_name(release_id), dns_label(SETTINGS, release_id)

    assert GROUP_NAME.match(name), name
    assert DNS_LABEL.match(label), label
    assert group_name(release_id) == name and dns_label(SETTINGS, release_id) == label


def test_names_of_different_releases_differ_even_when_they_clean_up_alike():
    assert group_name("rel-a-b") != group_name("rel-a--b")
    assert dns_label(SETTINGS, "rel-a-b") != dns_label(SETTINGS, "rel-a--b")


def test_the_dns_label_depends_on_the_subscription_and_resource_group():
    other = AzureSettings.from_env({**example_env(), "ACI_RESOURCE_GROUP": "rg-other"})

    assert dns_label(SETTINGS, RELEASE) != dns_label(other, RELEASE)


def test_from_settings_builds_the_real_client_without_network():
    staging = AciStaging.from_settings(SETTINGS, credential=StaticCredential(), timeout_s=30)

    assert type(staging.aci_client).__name__ == "ContainerInstanceManagementClient"
    assert staging.timeout_s == 30
    assert staging.resource_group == "rg-mlops"


def test_a_failed_listing_during_cleanup_does_not_fail_the_deployment():
    client = FakeContainerInstanceClient()
    client.container_groups.list_error = HttpResponseError(message="throttled")

    assert make_staging(client).deploy_staging(RELEASE, IMAGE, MODEL).version == RELEASE
