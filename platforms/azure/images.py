"""The Images port on Azure: the scoring image is built and pushed by ACR Tasks (a "quick build").

``AcrImages.build`` assembles the same build context the local platform does (``Dockerfile``,
``score.py`` and ``requirements.txt`` from ``scoring/``, plus ``model/`` with the registered
model's files), packs it as a tar.gz, uploads it to the blob location ACR hands out
(``listBuildSourceUploadUrl``) and schedules a ``DockerBuildRequest`` run that builds and pushes
``<repository>:<model version>-<release id>``. It does not wait for the build: ACR's own
``Microsoft.ContainerRegistry.ImagePushed`` event (Event Grid system topic) continues the release.

Why there is a small REST client here: azure-mgmt-containerregistry 15.0.0 (the pinned version)
moved every ACR Tasks operation (``listBuildSourceUploadUrl``, ``scheduleRun``, ``runs``) and
model (``DockerBuildRequest``, ``Run``...) to the separate ``azure-mgmt-containerregistrytasks``
package, which is not a dependency of this project. What 15.0.0 still offers is
``ContainerRegistryManagementClient.send_request``: a request through the client's own ARM
pipeline (``DefaultAzureCredential`` bearer token, retries, ARM endpoint of the cloud).
``AcrTasksClient`` uses it for the three ACR Tasks calls, with the stable ``2019-04-01`` REST
API, and mirrors the operation names and shapes of ``azure-mgmt-containerregistrytasks``
(``registries.get_build_source_upload_url``, ``registries.schedule_run`` taking the request as
JSON, ``runs.list(filter=, top=)``; results with ``upload_url``/``relative_path``,
``run_id``/``status``/``output_images[].digest``), so that client can replace it unchanged
should the project take that dependency on.
"""

from __future__ import annotations

import gzip
import io
import logging
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from functions.domain.ids import image_tag
from functions.domain.refs import ImageRef, ModelRef
from platforms.azure.settings import AzureSettings
from platforms.common.model_files import ModelFiles

logger = logging.getLogger("mlops.azure.images")

SCORING_DIR = Path(__file__).resolve().parents[2] / "scoring"
CONTEXT_FILES = ("Dockerfile", "score.py", "requirements.txt")
MODEL_DIR = "model"
DOCKERFILE = "Dockerfile"
# The stable ACR Tasks API version (runs, scheduleRun, listBuildSourceUploadUrl, DockerBuildRequest).
ACR_TASKS_API_VERSION = "2019-04-01"
DEFAULT_BUILD_TIMEOUT_S = 3600
MIN_BUILD_TIMEOUT_S, MAX_BUILD_TIMEOUT_S = 300, 28800  # what the REST schema allows
DEFAULT_LOOKUP_RUNS = 100

Uploader = Callable[[str, bytes], None]


# ---- the ACR Tasks request and results (REST field names of the 2019-04-01 schema) ----------------


@dataclass(frozen=True)
class PlatformProperties:
    os: str = "Linux"
    architecture: str | None = "amd64"

    def serialize(self) -> dict[str, Any]:
        body: dict[str, Any] = {"os": self.os}
        if self.architecture:
            body["architecture"] = self.architecture
        return body


@dataclass(frozen=True)
class DockerBuildRequest:
    """A quick build: build ``docker_file_path`` from the uploaded context and push ``image_names``.

    Field names follow ``DockerBuildRequest`` of the ACR Tasks SDKs; ``serialize()`` gives the JSON
    body ``scheduleRun`` takes (keys as in the REST schema: imageNames, isPushEnabled, ...).
    """

    image_names: tuple[str, ...]
    source_location: str
    platform: PlatformProperties = field(default_factory=PlatformProperties)
    docker_file_path: str = DOCKERFILE
    is_push_enabled: bool = True
    no_cache: bool = False
    timeout: int = DEFAULT_BUILD_TIMEOUT_S
    is_archive_enabled: bool = False
    type: str = "DockerBuildRequest"

    def serialize(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "imageNames": list(self.image_names),
            "sourceLocation": self.source_location,
            "dockerFilePath": self.docker_file_path,
            "platform": self.platform.serialize(),
            "isPushEnabled": self.is_push_enabled,
            "noCache": self.no_cache,
            "timeout": self.timeout,
            "isArchiveEnabled": self.is_archive_enabled,
        }


@dataclass(frozen=True)
class SourceUploadDefinition:
    upload_url: str
    relative_path: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SourceUploadDefinition:
        return cls(upload_url=str(body.get("uploadUrl") or ""), relative_path=str(body.get("relativePath") or ""))


@dataclass(frozen=True)
class ImageDescriptor:
    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""


@dataclass(frozen=True)
class Run:
    run_id: str = ""
    status: str = ""
    create_time: str = ""
    finish_time: str = ""
    output_images: tuple[ImageDescriptor, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Run:
        properties = body.get("properties") or {}
        images = tuple(
            ImageDescriptor(
                registry=str(item.get("registry") or ""),
                repository=str(item.get("repository") or ""),
                tag=str(item.get("tag") or ""),
                digest=str(item.get("digest") or ""),
            )
            for item in properties.get("outputImages") or []
        )
        return cls(
            run_id=str(properties.get("runId") or ""),
            status=str(properties.get("status") or ""),
            create_time=str(properties.get("createTime") or ""),
            finish_time=str(properties.get("finishTime") or ""),
            output_images=images,
        )


# ---- what AcrImages needs from a registry client ------------------------------------------------


class _RegistriesOperations(Protocol):
    def get_build_source_upload_url(self, resource_group_name: str, registry_name: str) -> Any: ...

    def schedule_run(self, resource_group_name: str, registry_name: str, run_request: Any) -> Any: ...


class _RunsOperations(Protocol):
    def list(
        self, resource_group_name: str, registry_name: str, *, filter: str | None = None, top: int | None = None
    ) -> Any: ...


class RegistryTasksClient(Protocol):
    """The shape of ``AcrTasksClient`` (and of ``azure.mgmt.containerregistrytasks``'s client).

    Read-only members: a client's own operations classes (``_AcrRegistries``, the SDK's
    ``RegistriesOperations``) satisfy them; a settable attribute would have to be exactly the Protocol.
    """

    @property
    def registries(self) -> _RegistriesOperations: ...

    @property
    def runs(self) -> _RunsOperations: ...


class AcrTasksClient:
    """ACR Tasks over ARM REST, sent through ``ContainerRegistryManagementClient.send_request``.

    ``send_request`` takes an ``azure.core.rest.HttpRequest`` with a path relative to the ARM
    endpoint and returns an ``azure.core.rest.HttpResponse`` (that is what the mgmt client's
    method does: it adds the endpoint, the bearer token and retries).
    """

    def __init__(
        self, send_request: Callable[[Any], Any], subscription_id: str, api_version: str = ACR_TASKS_API_VERSION
    ) -> None:
        self._send_request = send_request
        self.subscription_id = subscription_id
        self.api_version = api_version
        self.registries = _AcrRegistries(self)
        self.runs = _AcrRuns(self)

    @classmethod
    def from_settings(cls, settings: AzureSettings, credential: Any = None) -> AcrTasksClient:
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        from platforms.azure.clients import credential_or_default

        client = ContainerRegistryManagementClient(credential_or_default(credential), settings.subscription_id)
        return cls(client.send_request, settings.subscription_id)

    def registry_path(self, resource_group_name: str, registry_name: str) -> str:
        return (
            f"/subscriptions/{quote(self.subscription_id, safe='')}"
            f"/resourceGroups/{quote(resource_group_name, safe='')}"
            f"/providers/Microsoft.ContainerRegistry/registries/{quote(registry_name, safe='')}"
        )

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        """One ARM call; the JSON answer ({} when empty). Errors are raised as the SDKs raise them.

        A path gets ``api-version``; an absolute URL (a ``nextLink``) is sent as it is.
        """
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, map_error
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        query = dict(params or {})
        if not url.startswith(("https://", "http://")):
            query = {"api-version": self.api_version, **query}
        request = HttpRequest(method, url, params=query or None, json=body)
        response = self._send_request(request)
        if response.status_code not in ok:
            map_error(status_code=response.status_code, response=response, error_map={404: ResourceNotFoundError})
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return response.json() if response.content else {}


class _AcrRegistries:
    def __init__(self, client: AcrTasksClient) -> None:
        self._client = client

    def get_build_source_upload_url(self, resource_group_name: str, registry_name: str) -> SourceUploadDefinition:
        path = self._client.registry_path(resource_group_name, registry_name) + "/listBuildSourceUploadUrl"
        return SourceUploadDefinition.from_json(self._client.send("POST", path))

    def schedule_run(self, resource_group_name: str, registry_name: str, run_request: Mapping[str, Any]) -> Run:
        """Queue the run; answers with it (status Queued) without waiting for the build."""
        path = self._client.registry_path(resource_group_name, registry_name) + "/scheduleRun"
        body = self._client.send("POST", path, body=dict(run_request), ok=(200, 201, 202))
        return Run.from_json(body)


class _AcrRuns:
    def __init__(self, client: AcrTasksClient) -> None:
        self._client = client

    def list(
        self, resource_group_name: str, registry_name: str, *, filter: str | None = None, top: int | None = None
    ) -> Iterator[Run]:
        """The registry's runs, newest first, following ``nextLink`` pages (at most ``top``)."""
        params: dict[str, Any] = {}
        if filter is not None:
            params["$filter"] = filter
        if top is not None:
            params["$top"] = top
        path = self._client.registry_path(resource_group_name, registry_name) + "/runs"
        page = self._client.send("GET", path, params=params)
        returned = 0
        while True:
            for item in page.get("value") or []:
                if top is not None and returned >= top:
                    return
                returned += 1
                yield Run.from_json(item)
            next_link = page.get("nextLink")
            if not next_link:
                return
            page = self._client.send("GET", next_link)  # the link carries api-version and the query


# ---- the adapter --------------------------------------------------------------------------------


def upload_to_blob(upload_url: str, data: bytes) -> None:
    """Upload the archive to the SAS URL ``listBuildSourceUploadUrl`` returned (it carries its own auth)."""
    from azure.storage.blob import BlobClient

    BlobClient.from_blob_url(upload_url).upload_blob(data, overwrite=True)


def pack_context(directory: Path) -> bytes:
    """A gzipped tar of ``directory``'s files and folders, paths relative to it, byte-for-byte reproducible.

    Entries are sorted, owned by root with neutral modes and a zero mtime, so the same context
    always gives the same archive. Anything that is not a regular file or folder is refused.
    """
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(directory.rglob("*")):
            name = path.relative_to(directory).as_posix()
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise ValueError(f"build context entry {name} is not a regular file or folder")
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = path.stat().st_size
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    return buffer.getvalue()


class AcrImages:
    """Images port on Azure Container Registry, built by ACR Tasks; ImagePushed comes from ACR itself."""

    def __init__(
        self,
        settings: AzureSettings,
        registry_client: RegistryTasksClient,
        model_files: ModelFiles,
        *,
        uploader: Uploader = upload_to_blob,
        scoring_dir: Path = SCORING_DIR,
        build_timeout_s: int = DEFAULT_BUILD_TIMEOUT_S,
        lookup_runs: int = DEFAULT_LOOKUP_RUNS,
    ) -> None:
        self.settings = settings
        self.registry_client = registry_client
        self.model_files = model_files
        self.uploader = uploader
        self.scoring_dir = Path(scoring_dir)
        if not MIN_BUILD_TIMEOUT_S <= build_timeout_s <= MAX_BUILD_TIMEOUT_S:
            limits = f"{MIN_BUILD_TIMEOUT_S}..{MAX_BUILD_TIMEOUT_S}"
            raise ValueError(f"build_timeout_s={build_timeout_s} is outside ACR's limits {limits}")
        self.build_timeout_s = build_timeout_s
        self.lookup_runs = lookup_runs

    @property
    def resource_group(self) -> str:
        return self.settings.resource_group

    @property
    def registry_name(self) -> str:
        return self.settings.acr_name

    def build(self, release_id: str, model: ModelRef) -> ImageRef:
        repository = self.settings.repository
        tag = image_tag(model.version, release_id)
        try:
            existing = self.lookup(repository, tag)
        except Exception:  # a failed look-up must not stop the build; building the tag again is harmless
            logger.warning("could not look up %s:%s before building; building it", repository, tag, exc_info=True)
            existing = None
        if existing is not None:
            logger.info("image %s already pushed (%s); not building again", existing.reference, existing.digest)
            return existing
        with tempfile.TemporaryDirectory(prefix="mlops-acr-context-") as temporary:
            context = Path(temporary) / "context"
            self.assemble_context(model, context)
            archive = pack_context(context)
        upload = self.registry_client.registries.get_build_source_upload_url(self.resource_group, self.registry_name)
        if not upload.upload_url or not upload.relative_path:
            raise RuntimeError(f"registry {self.registry_name} returned no build source upload location")
        self.uploader(upload.upload_url, archive)
        request = DockerBuildRequest(
            image_names=(f"{repository}:{tag}",),
            source_location=upload.relative_path,
            platform=PlatformProperties(os="Linux", architecture="amd64"),
            docker_file_path=DOCKERFILE,
            is_push_enabled=True,
            timeout=self.build_timeout_s,
        )
        run = self.registry_client.registries.schedule_run(self.resource_group, self.registry_name, request.serialize())
        logger.info(
            "ACR run %s (%s) builds %s:%s for release %s from %d bytes of context",
            getattr(run, "run_id", "") or "?",
            _text(getattr(run, "status", "")) or "scheduled",
            repository,
            tag,
            release_id,
            len(archive),
        )
        return ImageRef(repository, tag, digest="", location=self._location(repository, tag))

    def lookup(self, repository: str, tag: str) -> ImageRef | None:
        """The image ``repository:tag`` with its digest, if an ACR run built and pushed it.

        The management plane has no tag listing (the ACR data-plane SDK, ``azure-containerregistry``,
        is not a dependency, and exchanging an AAD token for a registry token by hand would need
        AcrPull on the data plane too). What ARM does have is the ACR Tasks run history: every
        successful build records its ``outputImages`` (registry, repository, tag, digest). So this
        lists the registry's newest succeeded runs whose image manifests mention the repository
        (``Status eq 'Succeeded' and contains(OutputImageManifests, '<repository>@')``; ``az acr
        task list-runs --image`` filters the same field with ``'<repository>@<digest>'``) and takes
        the first, newest, whose output image is exactly ``repository:tag``. Only the newest
        ``lookup_runs`` runs are scanned: enough for the release being reconciled, which was built
        recently. Limits: an image pushed other than by an ACR run is not found, and one deleted
        from the registry since its run is still reported (the run history keeps it).
        """
        runs = self.registry_client.runs.list(
            self.resource_group, self.registry_name, filter=_succeeded_runs_of(repository), top=self.lookup_runs
        )
        for run in runs:
            if _text(getattr(run, "status", "")).lower() != "succeeded":
                continue
            for output in getattr(run, "output_images", None) or []:
                if output.repository == repository and output.tag == tag and output.digest:
                    return ImageRef(repository, tag, output.digest, self._location(repository, tag))
        return None

    def assemble_context(self, model: ModelRef, directory: Path) -> None:
        """Write the scoring image's build context: Dockerfile, score.py, requirements.txt and model/."""
        directory.mkdir(parents=True, exist_ok=False)
        for name in CONTEXT_FILES:
            shutil.copyfile(self.scoring_dir / name, directory / name)
        model_dir = directory / MODEL_DIR
        model_dir.mkdir()
        self.model_files(model, model_dir)
        if not any(path.is_file() for path in model_dir.rglob("*")):
            raise FileNotFoundError(f"cannot package {model.name}:{model.version}: no model files were written")

    def _location(self, repository: str, tag: str) -> str:
        return f"{self.settings.login_server}/{repository}:{tag}"


def _text(value: Any) -> str:
    """An SDK enum member's value (``str()`` of a str-mixin Enum is ``Class.MEMBER``), or the text."""
    return str(value.value) if isinstance(value, Enum) else str(value or "")


def _succeeded_runs_of(repository: str) -> str:
    quoted = repository.replace("'", "''")
    return f"Status eq 'Succeeded' and contains(OutputImageManifests, '{quoted}@')"
