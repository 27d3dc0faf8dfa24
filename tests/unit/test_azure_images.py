"""AcrImages (ACR Tasks build) and the ACR Tasks REST client, offline: fakes and a stubbed ARM transport."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import tarfile
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from functions.domain.ids import image_tag, release_id_from_image_tag
from functions.domain.refs import ImageRef, ModelRef
from platforms.azure.images import (
    ACR_TASKS_API_VERSION,
    SCORING_DIR,
    AcrImages,
    AcrTasksClient,
    DockerBuildRequest,
    PlatformProperties,
    Run,
    SourceUploadDefinition,
    pack_context,
)
from platforms.azure.settings import AzureSettings, example_env
from tests.doubles.azure_mgmt import (
    RELATIVE_PATH,
    UPLOAD_URL,
    ArmStub,
    FakeRegistryTasksClient,
    FakeUploader,
    StaticCredential,
    registry_mgmt_client,
    succeeded_run,
)

SETTINGS = AzureSettings.from_env(example_env())
MODEL = ModelRef("diabetes-model", "7", "azureml://registries/models/diabetes-model/versions/7", {"release_id": "r"})
RELEASE = "rel-build-42"
TAG = "7-rel-build-42"
REGISTRY_PATH = (
    f"/subscriptions/{SETTINGS.subscription_id}/resourceGroups/{SETTINGS.resource_group}"
    f"/providers/Microsoft.ContainerRegistry/registries/{SETTINGS.acr_name}"
)


def write_model(model: ModelRef, directory: Path) -> None:
    """What download_model does on Azure: the registered model's files, flat in ``directory``."""
    (directory / "model.joblib").write_bytes(b"joblib-bytes-" + model.version.encode())
    (directory / "model_card.json").write_text(json.dumps({"name": model.name, "version": model.version}))
    (directory / "extra").mkdir()
    (directory / "extra" / "profile.json").write_text("{}")


def make_images(client: FakeRegistryTasksClient, uploader: FakeUploader, **kwargs) -> AcrImages:
    return AcrImages(SETTINGS, client, write_model, uploader=uploader, **kwargs)


def read_archive(data: bytes) -> dict[str, tarfile.TarInfo | bytes]:
    entries: dict[str, tarfile.TarInfo | bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member) if member.isfile() else None
            entries[member.name] = extracted.read() if extracted else member
    return entries


# ---- build -------------------------------------------------------------------------------------


def test_build_uploads_the_context_and_schedules_a_docker_build_in_that_order():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()

    image = make_images(client, uploader).build(RELEASE, MODEL)

    assert image == ImageRef("diabetes-scoring", TAG, "", f"crmlops.azurecr.io/diabetes-scoring:{TAG}")
    assert client.operations() == ["runs.list", "get_build_source_upload_url", "schedule_run"]
    assert client.calls[1] == ("get_build_source_upload_url", "rg-mlops", "crmlops")
    assert [url for url, _ in uploader.uploads] == [UPLOAD_URL]
    _, resource_group, registry, body = client.calls[2]
    assert (resource_group, registry) == ("rg-mlops", "crmlops")
    # The JSON body scheduleRun takes, with the REST schema's key names.
    assert body == {
        "type": "DockerBuildRequest",
        "imageNames": [f"diabetes-scoring:{TAG}"],
        "sourceLocation": RELATIVE_PATH,
        "dockerFilePath": "Dockerfile",
        "platform": {"os": "Linux", "architecture": "amd64"},
        "isPushEnabled": True,
        "noCache": False,
        "timeout": 3600,
        "isArchiveEnabled": False,
    }


def test_the_tag_is_model_version_dash_release_id_so_image_pushed_finds_the_release():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()

    image = make_images(client, uploader).build(RELEASE, MODEL)

    assert image.tag == image_tag(MODEL.version, RELEASE) == TAG
    assert release_id_from_image_tag(image.tag) == RELEASE
    assert image.reference == f"diabetes-scoring:{TAG}"


def test_the_archive_holds_the_scoring_files_and_the_model_at_the_root():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()

    make_images(client, uploader).build(RELEASE, MODEL)

    entries = read_archive(uploader.uploads[0][1])
    files = sorted(name for name, value in entries.items() if isinstance(value, bytes))
    assert files == [
        "Dockerfile",
        "model/extra/profile.json",
        "model/model.joblib",
        "model/model_card.json",
        "requirements.txt",
        "score.py",
    ]
    for name in ("Dockerfile", "score.py", "requirements.txt"):
        assert entries[name] == (SCORING_DIR / name).read_bytes()
    assert entries["model/model.joblib"] == b"joblib-bytes-7"
    card = entries["model/model_card.json"]
    assert isinstance(card, bytes) and json.loads(card) == {"name": "diabetes-model", "version": "7"}
    # The Dockerfile copies model/ and score.py from the context root: the layout it expects.
    dockerfile = (SCORING_DIR / "Dockerfile").read_text()
    assert "COPY model/ " in dockerfile and "COPY score.py " in dockerfile
    # No absolute paths, no parent references, neutral ownership.
    for name in entries:
        assert not name.startswith("/") and ".." not in name.split("/")
    with tarfile.open(fileobj=io.BytesIO(uploader.uploads[0][1]), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert (member.uid, member.gid, member.uname, member.gname, member.mtime) == (0, 0, "", "", 0)


def test_the_archive_is_reproducible(tmp_path: Path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "b.txt").write_text("b")
    (context / "a").mkdir()
    (context / "a" / "c.bin").write_bytes(b"\x00\x01")

    first = pack_context(context)
    (context / "b.txt").touch()  # a new mtime only
    second = pack_context(context)

    assert first == second
    assert gzip.decompress(first)  # a real gzip stream
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        assert tar.getnames() == ["a", "a/c.bin", "b.txt"]


def test_a_symlink_in_the_context_is_refused(tmp_path: Path):
    context = tmp_path / "context"
    context.mkdir()
    (context / "link").symlink_to("/etc/passwd")

    with pytest.raises(ValueError, match="link is not a regular file"):
        pack_context(context)


def test_model_files_get_the_model_and_an_empty_model_folder_inside_the_context():
    seen: list[tuple[ModelRef, Path, list[str]]] = []

    def model_files(model: ModelRef, directory: Path) -> None:
        seen.append((model, directory, sorted(p.name for p in directory.parent.iterdir())))
        (directory / "model.joblib").write_bytes(b"m")

    client, uploader = FakeRegistryTasksClient(), FakeUploader()
    AcrImages(SETTINGS, client, model_files, uploader=uploader).build(RELEASE, MODEL)

    model, directory, siblings = seen[0]
    assert model == MODEL
    assert directory.name == "model"
    assert siblings == ["Dockerfile", "model", "requirements.txt", "score.py"]
    assert not directory.exists()  # the temporary context is gone after the build


def test_no_model_files_means_no_build():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()

    with pytest.raises(FileNotFoundError, match="diabetes-model:7"):
        AcrImages(SETTINGS, client, lambda model, directory: None, uploader=uploader).build(RELEASE, MODEL)

    assert uploader.uploads == []
    assert "schedule_run" not in client.operations()


def test_a_registry_without_an_upload_location_is_an_error():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()
    client.upload = SourceUploadDefinition(upload_url="", relative_path="")

    with pytest.raises(RuntimeError, match="no build source upload location"):
        make_images(client, uploader).build(RELEASE, MODEL)
    assert "schedule_run" not in client.operations()


def test_build_is_idempotent_when_the_tag_was_already_pushed():
    digest = "sha256:" + "ab" * 32
    client = FakeRegistryTasksClient(runs=[succeeded_run("ca9", ("diabetes-scoring", TAG, digest))])
    uploader = FakeUploader()

    image = make_images(client, uploader).build(RELEASE, MODEL)

    assert image == ImageRef("diabetes-scoring", TAG, digest, f"crmlops.azurecr.io/diabetes-scoring:{TAG}")
    assert client.operations() == ["runs.list"]
    assert uploader.uploads == []


def test_build_goes_ahead_when_the_look_up_fails():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()
    client.list_error = HttpResponseError(message="runs are not readable")

    image = make_images(client, uploader).build(RELEASE, MODEL)

    assert image.tag == TAG
    assert client.operations() == ["runs.list", "get_build_source_upload_url", "schedule_run"]


def test_build_timeout_is_passed_to_the_run():
    client, uploader = FakeRegistryTasksClient(), FakeUploader()

    make_images(client, uploader, build_timeout_s=900).build(RELEASE, MODEL)

    assert client.calls[-1][3]["timeout"] == 900


# ---- lookup ------------------------------------------------------------------------------------


def test_lookup_finds_the_digest_in_the_newest_succeeded_run_that_pushed_the_tag():
    digest = "sha256:" + "cd" * 32
    client = FakeRegistryTasksClient(
        runs=[
            succeeded_run("ca5", ("diabetes-scoring", "8-rel-other", "sha256:" + "00" * 32)),
            succeeded_run("ca4", ("other-repo", TAG, "sha256:" + "11" * 32)),
            succeeded_run("ca3", ("diabetes-scoring", TAG, digest)),
            succeeded_run("ca2", ("diabetes-scoring", TAG, "sha256:" + "22" * 32)),
        ]
    )

    found = make_images(client, FakeUploader(), lookup_runs=50).lookup("diabetes-scoring", TAG)

    assert found == ImageRef("diabetes-scoring", TAG, digest, f"crmlops.azurecr.io/diabetes-scoring:{TAG}")
    assert client.calls == [
        (
            "runs.list",
            "rg-mlops",
            "crmlops",
            "Status eq 'Succeeded' and contains(OutputImageManifests, 'diabetes-scoring@')",
            50,
        )
    ]


def test_lookup_misses_when_no_run_pushed_the_tag():
    client = FakeRegistryTasksClient(
        runs=[
            succeeded_run("ca3", ("diabetes-scoring", "7-rel-other", "sha256:" + "00" * 32)),
            succeeded_run("ca2", ("diabetes-scoring", TAG, "sha256:" + "11" * 32), status="Failed"),
            succeeded_run("ca1", ("diabetes-scoring", TAG, "")),  # no digest: nothing was pushed
        ]
    )

    assert make_images(client, FakeUploader()).lookup("diabetes-scoring", TAG) is None


@pytest.mark.parametrize("outcome", ["Failed", "Canceled"])
def test_a_build_is_found_once_its_run_has_pushed_and_not_if_it_did_not(outcome: str):
    pushes, fails = FakeRegistryTasksClient(), FakeRegistryTasksClient()
    for client in (pushes, fails):
        make_images(client, FakeUploader()).build(RELEASE, MODEL)
        assert [run.status for run in client.run_history] == ["Queued"]
        assert make_images(client, FakeUploader()).lookup("diabetes-scoring", TAG) is None  # still building

    pushes.finish_runs()
    fails.finish_runs(outcome)

    found = make_images(pushes, FakeUploader()).lookup("diabetes-scoring", TAG)
    assert found is not None and found.digest == pushes.run_history[0].output_images[0].digest
    assert pushes.pushed_events == [{"action": "push", "target": {"repository": "diabetes-scoring", "tag": TAG,
                                                                  "digest": found.digest}}]  # fmt: skip
    assert make_images(fails, FakeUploader()).lookup("diabetes-scoring", TAG) is None
    assert fails.pushed_events == []


def test_lookup_on_an_empty_history_is_none():
    assert make_images(FakeRegistryTasksClient(), FakeUploader()).lookup("diabetes-scoring", TAG) is None


# ---- the request model -------------------------------------------------------------------------


def test_docker_build_request_fields_and_serialisation():
    request = DockerBuildRequest(
        image_names=("diabetes-scoring:7-rel-1",),
        source_location="source/x.tar.gz",
        platform=PlatformProperties(os="Linux"),
    )

    assert request.type == "DockerBuildRequest"
    assert request.docker_file_path == "Dockerfile"
    assert request.is_push_enabled is True
    body = request.serialize()
    assert body["imageNames"] == ["diabetes-scoring:7-rel-1"]
    assert body["sourceLocation"] == "source/x.tar.gz"
    assert body["dockerFilePath"] == "Dockerfile"
    assert body["isPushEnabled"] is True
    assert body["platform"] == {"os": "Linux", "architecture": "amd64"}
    assert PlatformProperties(os="Linux", architecture=None).serialize() == {"os": "Linux"}
    assert json.loads(json.dumps(body)) == body  # plain JSON


# ---- AcrTasksClient through the real ContainerRegistryManagementClient pipeline -------------------


def tasks_client(routes) -> tuple[AcrTasksClient, ArmStub]:
    stub = ArmStub(routes)
    mgmt = registry_mgmt_client(stub, SETTINGS.subscription_id)
    return AcrTasksClient(mgmt.send_request, SETTINGS.subscription_id), stub


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_rest_client_gets_the_upload_url():
    client, stub = tasks_client(
        {("POST", "/listBuildSourceUploadUrl"): (200, {"uploadUrl": UPLOAD_URL, "relativePath": RELATIVE_PATH})}
    )

    upload = client.registries.get_build_source_upload_url("rg-mlops", "crmlops")

    assert upload == SourceUploadDefinition(upload_url=UPLOAD_URL, relative_path=RELATIVE_PATH)
    sent = stub.requests[0]
    assert sent.method == "POST"
    assert urlsplit(sent.url).netloc == "management.azure.com"
    assert urlsplit(sent.url).path == REGISTRY_PATH + "/listBuildSourceUploadUrl"
    assert query_of(sent.url)["api-version"] == [ACR_TASKS_API_VERSION]
    assert sent.headers["Authorization"] == "Bearer fake-arm-token"


def test_rest_client_schedules_the_run_with_the_json_body():
    run_json = {
        "id": REGISTRY_PATH + "/runs/ca7",
        "name": "ca7",
        "properties": {"runId": "ca7", "status": "Queued", "createTime": "2026-11-26T12:00:00+00:00"},
    }
    client, stub = tasks_client({("POST", "/scheduleRun"): (200, run_json)})
    body = DockerBuildRequest(image_names=(f"diabetes-scoring:{TAG}",), source_location=RELATIVE_PATH).serialize()

    run = client.registries.schedule_run("rg-mlops", "crmlops", body)

    assert (run.run_id, run.status) == ("ca7", "Queued")
    sent = stub.requests[0]
    assert urlsplit(sent.url).path == REGISTRY_PATH + "/scheduleRun"
    assert query_of(sent.url)["api-version"] == [ACR_TASKS_API_VERSION]
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == body


def test_rest_client_accepts_a_202_without_a_body():
    client, _ = tasks_client({("POST", "/scheduleRun"): (202, None)})

    run = client.registries.schedule_run("rg-mlops", "crmlops", {"type": "DockerBuildRequest"})

    assert run == Run()


def test_rest_client_lists_runs_with_filter_top_and_pages():
    page_2 = f"https://management.azure.com{REGISTRY_PATH}/runs?api-version={ACR_TASKS_API_VERSION}&$skipToken=p2"
    image = {"registry": "crmlops.azurecr.io", "repository": "diabetes-scoring", "tag": TAG, "digest": "sha256:9"}
    first = {"value": [{"properties": {"runId": "ca3", "status": "Succeeded"}}], "nextLink": page_2}
    second = {"value": [{"properties": {"runId": "ca2", "status": "Succeeded", "outputImages": [image]}}]}
    client, stub = tasks_client({("GET", "/runs"): [(200, first), (200, second)]})

    runs = list(client.runs.list("rg-mlops", "crmlops", filter="Status eq 'Succeeded'", top=10))

    assert [r.run_id for r in runs] == ["ca3", "ca2"]
    assert runs[1].output_images[0].digest == "sha256:9"
    assert runs[1].output_images[0].tag == TAG
    first_query = query_of(stub.requests[0].url)
    assert first_query == {"api-version": [ACR_TASKS_API_VERSION], "$filter": ["Status eq 'Succeeded'"], "$top": ["10"]}
    assert query_of(stub.requests[1].url)["$skipToken"] == ["p2"]
    assert query_of(stub.requests[1].url)["api-version"] == [ACR_TASKS_API_VERSION]  # not doubled


def test_rest_client_stops_at_top():
    value = [{"properties": {"runId": f"ca{i}", "status": "Succeeded"}} for i in range(5)]
    client, _ = tasks_client({("GET", "/runs"): (200, {"value": value, "nextLink": "https://management.azure.com/x"})})

    assert [r.run_id for r in client.runs.list("rg-mlops", "crmlops", top=2)] == ["ca0", "ca1"]


def test_rest_client_raises_the_sdk_errors():
    client, _ = tasks_client({("POST", "/scheduleRun"): (400, {"error": {"code": "BadRequest", "message": "nope"}})})

    with pytest.raises(HttpResponseError, match="nope"):
        client.registries.schedule_run("rg-mlops", "crmlops", {"type": "DockerBuildRequest"})
    with pytest.raises(ResourceNotFoundError):
        client.registries.get_build_source_upload_url("rg-mlops", "crmlops")  # no route: 404


def test_acr_images_end_to_end_through_the_rest_client():
    """AcrImages + AcrTasksClient + the real mgmt client pipeline: the three ARM calls it makes."""
    run = {"properties": {"runId": "ca1", "status": "Queued"}}
    client, stub = tasks_client(
        {
            ("GET", "/runs"): (200, {"value": []}),
            ("POST", "/listBuildSourceUploadUrl"): (200, {"uploadUrl": UPLOAD_URL, "relativePath": RELATIVE_PATH}),
            ("POST", "/scheduleRun"): (200, run),
        }
    )
    uploader = FakeUploader()

    image = AcrImages(SETTINGS, client, write_model, uploader=uploader).build(RELEASE, MODEL)

    assert image.tag == TAG
    assert [(r.method, urlsplit(r.url).path.rsplit("/", 1)[-1]) for r in stub.requests] == [
        ("GET", "runs"),
        ("POST", "listBuildSourceUploadUrl"),
        ("POST", "scheduleRun"),
    ]
    sent = json.loads(stub.requests[2].body)
    assert sent["imageNames"] == [f"diabetes-scoring:{TAG}"]
    assert sent["sourceLocation"] == RELATIVE_PATH
    assert len(uploader.uploads) == 1


def test_the_production_wiring_builds_real_clients_without_network():
    """What functions.bootstrap builds: AcrImages over AcrTasksClient.from_settings, the default uploader."""
    images = AcrImages(SETTINGS, AcrTasksClient.from_settings(SETTINGS, credential=StaticCredential()), write_model)

    assert isinstance(images.registry_client, AcrTasksClient)
    assert images.registry_client.subscription_id == SETTINGS.subscription_id
    assert images.uploader.__name__ == "upload_to_blob"


def test_lookup_reads_enum_statuses_as_the_sdk_models_carry_them():
    class RunStatus(str, Enum):  # noqa: UP042 - the str-mixin Enum the azure-mgmt SDKs generate
        SUCCEEDED = "Succeeded"

    digest = "sha256:" + "ef" * 32
    run = succeeded_run("ca1", ("diabetes-scoring", TAG, digest))
    client = FakeRegistryTasksClient(runs=[dataclasses.replace(run, status=RunStatus.SUCCEEDED)])

    found = make_images(client, FakeUploader()).lookup("diabetes-scoring", TAG)

    assert found is not None and found.digest == digest


@pytest.mark.parametrize("timeout", [299, 28801])
def test_a_build_timeout_outside_acrs_limits_is_refused(timeout: int):
    with pytest.raises(ValueError, match="build_timeout_s"):
        make_images(FakeRegistryTasksClient(), FakeUploader(), build_timeout_s=timeout)
