"""Azure provisioning behind `mlops azure bootstrap`: the seed's "one-time run", safe to run again.

Run after `az deployment group create -f infra/main.bicep` (docs/azure.md), with the operator's own
Azure login (DefaultAzureCredential) and the Azure settings in the environment:

1. workspace AZUREML_WORKSPACE: created (``workspaces.begin_create`` with a ``Workspace`` entity) when
   ``workspaces.get`` says it does not exist, otherwise left as it is. Of its dependent resources the
   settings know only the container registry (ACR_NAME, in AZURE_RESOURCE_GROUP), which the workspace
   is given; Azure ML creates its own storage account, key vault and Application Insights (with a
   Log Analytics workspace) in the resource group's region. (The app's storage account, the Bicep's,
   refuses shared keys, which a workspace's default datastores use; the Bicep's Key Vault and
   Application Insights are not in the settings.) Workspace operations go through an MLClient on the
   resource group, without a workspace name. infra/main.bicep refers to the workspace as
   ``existing``, so on the documented path it exists by the time this runs and the step says unchanged;
2. compute cluster AZUREML_COMPUTE: created when ``ml_client.compute.get`` says it does not exist,
   otherwise left as it is (a cluster scales to zero on its own). With AZUREML_COMPUTE=serverless
   there is no cluster: the steps run on serverless compute (platforms/azure/training.py) and this
   step is skipped;
3. environment AZUREML_ENVIRONMENT: the training environment (Azure ML's Ubuntu 22.04 image, Python
   3.11, numpy/pandas/scipy/scikit-learn/joblib pinned as in requirements.txt, so a model trained in
   Azure ML loads in the scoring image). A new version is registered only when the image or the
   conda definition differs from the latest version;
4. pipeline components: the three steps (mlops_data_checks, mlops_train, mlops_evaluate, versioned
   by a hash of the ml_pipeline code) are registered unless that name and version exist, so the
   workspace's catalogue shows them; each submission still builds its steps inline with its
   release's parameters;
5. event subscriptions: checks, through Azure Resource Manager, that the build topic and the two
   system topics each have a subscription to their function with the event types the caller's
   table assigns to it (they are deployed by the Bicep, phase 2).

The table of event types per function is a parameter, not an import: it is the service's
(functions.service.subscriptions.FUNCTION_EVENT_TYPES), and an adapter may not import the service
(pyproject.toml, import-linter), so devhost/commands_azure.py, which may, passes it in.

Each step reports one line ``<step>: <created|updated|unchanged|registered|exists|missing|differs|
failed|skipped|not checked> (detail)``; with ``dry_run`` nothing is created or updated. While the
workspace does not exist (a dry run, or its creation failed) the steps inside it are skipped. The
command itself (arguments, settings errors, exit code) is devhost/commands_azure.py's ``cmd_azure_bootstrap``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from platforms.azure.settings import TRAINING_VM_SIZE

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.rest import HttpRequest, HttpResponse

    from platforms.azure.settings import AzureSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "requirements.txt"

COMPUTE_SIZE = TRAINING_VM_SIZE  # STANDARD_DS3_V2, as each serverless step gets
COMPUTE_MIN_NODES = 0
COMPUTE_MAX_NODES = 4
COMPUTE_IDLE_SECONDS = 1800  # nodes kept between the steps of a pipeline, then released
ENVIRONMENT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
PYTHON_VERSION = "3.11"
TRAINING_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "joblib")

WORKSPACE_DESCRIPTION = "Azure ML workspace of the ML release orchestrator (created by mlops azure bootstrap)"

ARM_ENDPOINT = "https://management.azure.com"
EVENTGRID_API_VERSION = "2025-02-15"
FUNCTION_ENDPOINT = "AzureFunction"
# Which event source feeds which Event Grid function (infra/main.bicep).
SOURCES = {
    "on_build_event": "build topic",
    "on_ml_event": "workspace",
    "on_registry_event": "registry",
    "on_storage_event": "storage account",  # the release store's account holds the data container
}

Echo = Callable[[str], None]
# Event Grid function name -> the event types its subscription must include.
FunctionEventTypes = Mapping[str, Sequence[str]]


class ArmReader(Protocol):
    """Read access to Azure Resource Manager; ``path`` is a resource path like /subscriptions/..."""

    def get(self, path: str) -> dict[str, Any] | None:
        """The resource, or None when it does not exist (404)."""
        ...

    def list(self, path: str) -> list[dict[str, Any]]:
        """Every item of a collection (all pages); empty when the parent does not exist."""
        ...


# ---- the training environment -----------------------------------------------------------------


def pinned_requirements(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by lower-case name."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)", line)
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def conda_definition(requirements_text: str, name: str) -> dict[str, Any]:
    """The training environment's conda file: Python 3.11 and the ML packages pinned as the app pins them."""
    pins = pinned_requirements(requirements_text)
    unpinned = [package for package in TRAINING_PACKAGES if package not in pins]
    if unpinned:
        raise ValueError(f"requirements.txt does not pin {', '.join(unpinned)} (name==version)")
    return {
        "name": name,
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={PYTHON_VERSION}",
            "pip",
            {"pip": [f"{package}=={pins[package]}" for package in TRAINING_PACKAGES]},
        ],
    }


def training_environment(settings: AzureSettings, requirements_text: str | None = None) -> Any:
    """The Environment entity `bootstrap` registers (without a version: it picks one)."""
    from azure.ai.ml.entities import Environment

    text = REQUIREMENTS.read_text(encoding="utf-8") if requirements_text is None else requirements_text
    return Environment(
        name=settings.environment,
        description="Training environment of the ML release orchestrator (registered by mlops azure bootstrap)",
        image=ENVIRONMENT_IMAGE,
        conda_file=conda_definition(text, settings.environment),
    )


def _same_definition(existing: Any, wanted: Any) -> bool:
    """Same image and conda file (azure-ai-ml hands a registered version's conda file back as a dict)."""
    return existing.image == wanted.image and existing.conda_file == wanted.conda_file


def _next_version(latest: str | None, wanted: Any) -> str:
    if latest is None:
        return "1"
    if latest.isdigit():
        return str(int(latest) + 1)
    digest = hashlib.sha256(json.dumps([wanted.image, wanted.conda_file], sort_keys=True).encode()).hexdigest()
    return digest[:12]


# ---- the steps ------------------------------------------------------------------------------------


def bootstrap(
    settings: AzureSettings,
    ml_client: Any,
    eventgrid_mgmt_client: ArmReader | None = None,
    *,
    function_event_types: FunctionEventTypes,
    workspace_client: Any = None,
    components: Iterable[Any] | None = None,
    requirements_text: str | None = None,
    dry_run: bool = False,
    echo: Echo | None = None,
) -> list[str]:
    """Bring the workspace to what the app needs and check the event wiring; one line per step.

    ``ml_client`` is an ``azure.ai.ml.MLClient`` on the workspace. ``workspace_client`` is one on the
    resource group (no workspace name), for ``workspaces.get`` / ``begin_create``; ``ml_client`` if not
    given. ``eventgrid_mgmt_client`` reads Azure Resource Manager (``ArmResourceReader``); without it
    the subscriptions are "not checked". ``components`` are the pipeline's Azure ML components; without
    them that step is skipped. ``function_event_types`` is what each Event Grid function's subscription
    must include.
    """
    from azure.core.exceptions import AzureError

    lines: list[str] = []
    # Whether the workspace exists: unknown (None) until workspaces.get answers; if that fails, the
    # steps inside the workspace still try (the operator may lack Reader on the resource group only).
    workspace: dict[str, bool | None] = {"exists": None}

    def report(line: str) -> None:
        lines.append(line)
        if echo is not None:
            echo(line)

    def ensure_workspace() -> list[str]:
        client = workspace_client if workspace_client is not None else ml_client
        existing = _find_workspace(settings, client)
        workspace["exists"] = existing is not None
        if existing is not None:
            return [_existing_workspace(settings, existing)]
        line = _create_workspace(settings, client, dry_run)
        workspace["exists"] = not dry_run
        return [line]

    in_workspace: list[tuple[str, Callable[[], list[str]]]] = [
        (f"compute {settings.compute}", lambda: [_ensure_compute(settings, ml_client, dry_run)]),
        (
            f"environment {settings.environment}",
            lambda: [_ensure_environment(settings, ml_client, requirements_text, dry_run)],
        ),
        ("components", lambda: _ensure_components(ml_client, components, dry_run)),
    ]
    steps: list[tuple[str, Callable[[], list[str]], bool]] = [
        (f"workspace {settings.workspace}", ensure_workspace, False),
        *((name, step, True) for name, step in in_workspace),
        (
            "event subscriptions",
            lambda: _check_subscriptions(settings, eventgrid_mgmt_client, function_event_types),
            False,
        ),
    ]
    for name, step, needs_workspace in steps:
        if needs_workspace and workspace["exists"] is False:
            why = "it would be created first" if dry_run else "its creation failed"
            report(f"{name}: skipped (workspace {settings.workspace} does not exist yet; {why})")
            continue
        try:
            for line in step():
                report(line)
        except (AzureError, OSError, ValueError) as exc:
            report(f"{name}: failed ({type(exc).__name__}: {_first_line(exc)})")
    return lines


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


# ---- the workspace -------------------------------------------------------------------------------


def registry_id(settings: AzureSettings) -> str:
    """ACR_NAME's resource id: the registry is in AZURE_RESOURCE_GROUP (infra/main.bicep: ``existing``)."""
    return (
        f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}"
        f"/providers/Microsoft.ContainerRegistry/registries/{settings.acr_name}"
    )


def workspace_entity(settings: AzureSettings) -> Any:
    """The Workspace `bootstrap` creates when AZUREML_WORKSPACE does not exist.

    Only what the settings know: its name and resource group, and the registry ACR_NAME as its
    container registry (so Azure ML builds and pulls images there, where ACR Tasks pushes the scoring
    image). No location: the SDK takes the resource group's. No storage account, key vault or
    Application Insights: Azure ML creates its own (see the module docstring).
    """
    from azure.ai.ml.entities import Workspace

    return Workspace(
        name=settings.workspace,
        resource_group=settings.resource_group,
        description=WORKSPACE_DESCRIPTION,
        container_registry=registry_id(settings),
    )


def _find_workspace(settings: AzureSettings, client: Any) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return client.workspaces.get(settings.workspace)
    except ResourceNotFoundError:
        return None


def _existing_workspace(settings: AzureSettings, existing: Any) -> str:
    label = f"workspace {settings.workspace}"
    where = str(getattr(existing, "location", "") or "?")
    registry = str(getattr(existing, "container_registry", "") or "")
    if registry and registry.rstrip("/").rsplit("/", 1)[-1].lower() != settings.acr_name.lower():
        return (
            f"{label}: unchanged (exists in {where}; its container registry is {registry.rsplit('/', 1)[-1]}, "
            f"not ACR_NAME {settings.acr_name})"
        )
    return f"{label}: unchanged (exists in {where})"


def _create_workspace(settings: AzureSettings, client: Any, dry_run: bool) -> str:
    label = f"workspace {settings.workspace}"
    detail = (
        f"in {settings.resource_group}'s region, container registry {settings.acr_name}; "
        "Azure ML adds its own storage account, key vault and Application Insights"
    )
    if dry_run:
        return f"{label}: missing (would create: {detail})"
    created = client.workspaces.begin_create(workspace_entity(settings)).result()
    where = str(getattr(created, "location", "") or f"{settings.resource_group}'s region")
    return f"{label}: created (in {where}, container registry {settings.acr_name})"


# ---- compute, environment, components ------------------------------------------------------------


def _ensure_compute(settings: AzureSettings, ml_client: Any, dry_run: bool) -> str:
    from azure.ai.ml.entities import AmlCompute
    from azure.core.exceptions import ResourceNotFoundError

    name = settings.compute
    if settings.serverless:
        return (
            f"compute {name}: skipped (AZUREML_COMPUTE={name}: the pipeline steps run on Azure ML serverless "
            f"compute, {TRAINING_VM_SIZE}, one instance each; there is no cluster to create)"
        )
    try:
        existing = ml_client.compute.get(name)
    except ResourceNotFoundError:
        existing = None
    if existing is not None:
        kind = str(getattr(existing, "type", "") or "")
        if kind and kind.lower() != "amlcompute":
            return (
                f"compute {name}: unchanged (it is a {kind} compute, not a cluster: "
                "AZUREML_COMPUTE must name an AmlCompute cluster)"
            )
        size = getattr(existing, "size", None) or "?"
        nodes = f"{getattr(existing, 'min_instances', '?')}-{getattr(existing, 'max_instances', '?')}"
        return f"compute {name}: unchanged (exists: {size}, {nodes} nodes)"
    cluster = AmlCompute(
        name=name,
        size=COMPUTE_SIZE,
        min_instances=COMPUTE_MIN_NODES,
        max_instances=COMPUTE_MAX_NODES,
        idle_time_before_scale_down=COMPUTE_IDLE_SECONDS,
    )
    detail = f"{COMPUTE_SIZE}, {COMPUTE_MIN_NODES}-{COMPUTE_MAX_NODES} nodes"
    if dry_run:
        return f"compute {name}: missing (would create: {detail})"
    ml_client.compute.begin_create_or_update(cluster).result()
    return f"compute {name}: created ({detail})"


def _ensure_environment(settings: AzureSettings, ml_client: Any, requirements_text: str | None, dry_run: bool) -> str:
    from azure.ai.ml.exceptions import ValidationException
    from azure.core.exceptions import ResourceNotFoundError

    wanted = training_environment(settings, requirements_text)
    name = settings.environment
    try:
        latest = ml_client.environments.get(name=name, label="latest")
    except (ResourceNotFoundError, ValidationException):  # azure-ai-ml raises the latter for "no version yet"
        latest = None
    if latest is not None and _same_definition(latest, wanted):
        return f"environment {name}: unchanged (version {latest.version})"
    wanted.version = _next_version(None if latest is None else str(latest.version), wanted)
    verb = "created" if latest is None else "updated"
    why = "" if latest is None else f", image or conda definition differs from version {latest.version}"
    if dry_run:
        state = "missing" if latest is None else "differs"
        return f"environment {name}: {state} (would register version {wanted.version}{why})"
    registered = ml_client.environments.create_or_update(wanted)
    return f"environment {name}: {verb} (version {registered.version}{why})"


def _ensure_components(ml_client: Any, components: Iterable[Any] | None, dry_run: bool) -> list[str]:
    from azure.core.exceptions import ResourceNotFoundError

    if components is None:
        return [
            "components: skipped (none given; the retraining pipeline defines its steps inline when it is submitted)"
        ]
    lines = []
    for component in components:
        label = f"component {component.name}"
        if component.version:
            try:
                ml_client.components.get(name=component.name, version=str(component.version))
                lines.append(f"{label}: unchanged (version {component.version} exists)")
                continue
            except ResourceNotFoundError:
                pass
        if dry_run:
            lines.append(f"{label}: missing (would register version {component.version or 'next'})")
            continue
        registered = ml_client.components.create_or_update(component)
        verb = "created" if component.version else "registered"
        lines.append(f"{label}: {verb} (version {registered.version})")
    return lines or ["components: unchanged (none given)"]


# ---- the event subscriptions -------------------------------------------------------------------


def _resource_name(endpoint: str) -> str:
    """A resource's name from its endpoint's first host label: the custom topic's
    (https://<name>.<region>-1.eventgrid.azure.net/api/events) or the storage account's
    (https://<name>.table.core.windows.net)."""
    host = urlparse(endpoint).hostname or ""
    return host.split(".", 1)[0]


def _check_subscriptions(
    settings: AzureSettings, arm: ArmReader | None, function_event_types: FunctionEventTypes
) -> list[str]:
    if arm is None:
        return [
            f"event subscription {function}: not checked (no Azure Resource Manager client)"
            for function in function_event_types
        ]
    group = f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}"
    account = _resource_name(settings.tables_endpoint)  # the release store's account holds the data container
    sources = {
        "workspace": f"{group}/providers/Microsoft.MachineLearningServices/workspaces/{settings.workspace}",
        "registry": f"{group}/providers/Microsoft.ContainerRegistry/registries/{settings.acr_name}",
        "storage account": f"{group}/providers/Microsoft.Storage/storageAccounts/{account}",
    }
    system_topics: list[dict[str, Any]] | None = None
    lines = []
    for function, expected in function_event_types.items():
        label = f"event subscription {function}"
        source = SOURCES.get(function)
        if source is None:
            lines.append(f"{label}: not checked (no known event source for it)")
            continue
        if source == "build topic":
            topic = f"{group}/providers/Microsoft.EventGrid/topics/{_resource_name(settings.topic_endpoint)}"
            if arm.get(topic) is None:
                lines.append(f"{label}: missing (build topic {topic.rsplit('/', 1)[-1]} not found)")
                continue
            subscriptions = arm.list(f"{topic}/providers/Microsoft.EventGrid/eventSubscriptions")
            where = f"build topic {topic.rsplit('/', 1)[-1]}"
        else:
            if system_topics is None:
                system_topics = arm.list(f"{group}/providers/Microsoft.EventGrid/systemTopics")
            source_id = sources[source].lower()
            topics = [t for t in system_topics if str(t.get("properties", {}).get("source", "")).lower() == source_id]
            if not topics:
                lines.append(
                    f"{label}: missing (the {source} has no Event Grid system topic in {settings.resource_group})"
                )
                continue
            subscriptions = arm.list(f"{topics[0]['id']}/eventSubscriptions")
            where = f"system topic {topics[0].get('name', '?')}"
        lines.append(_judge(label, function, expected, subscriptions, where))
    return lines


def _judge(label: str, function: str, expected: Iterable[str], subscriptions: list[dict[str, Any]], where: str) -> str:
    targets = [s for s in subscriptions if _targets(s, function)]
    if not targets:
        return (
            f"{label}: missing (no subscription on {where} delivers to {function}; "
            "deploy infra/main.bicep with deployEventSubscriptions=true after publishing the app)"
        )
    subscription = targets[0]
    properties = subscription.get("properties", {})
    types = sorted((properties.get("filter") or {}).get("includedEventTypes") or [])
    name = subscription.get("name", "?")
    if types != sorted(expected):
        return f"{label}: differs ({name} on {where} includes {types or 'all types'}, expected {sorted(expected)})"
    state = properties.get("provisioningState", "Succeeded")
    if state != "Succeeded":
        return f"{label}: exists ({name} on {where}, provisioning state {state})"
    return f"{label}: exists ({name} on {where})"


def _targets(subscription: Mapping[str, Any], function: str) -> bool:
    destination = (subscription.get("properties") or {}).get("destination") or {}
    resource = str((destination.get("properties") or {}).get("resourceId") or "")
    return destination.get("endpointType") == FUNCTION_ENDPOINT and resource.lower().endswith(
        f"/functions/{function.lower()}"
    )


class ArmResourceReader:
    """GETs Azure Resource Manager resources with a bearer token (azure-core only).

    azure-mgmt-eventgrid is not a dependency of this project; the two reads the bootstrap needs are
    plain ARM GETs, sent through an azure-core pipeline with the caller's credential and retries.
    """

    def __init__(
        self,
        credential: TokenCredential,
        endpoint: str = ARM_ENDPOINT,
        api_version: str = EVENTGRID_API_VERSION,
        transport: Any = None,
    ):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy

        self._endpoint = endpoint.rstrip("/")
        self._api_version = api_version
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            base_url=self._endpoint,
            policies=[RetryPolicy(), BearerTokenCredentialPolicy(credential, f"{self._endpoint}/.default")],
            transport=transport,
        )

    def get(self, path: str) -> dict[str, Any] | None:
        response = self._send(self._url(path))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url: str | None = self._url(path)
        while url:
            response = self._send(url)
            if response.status_code == 404:
                return []
            response.raise_for_status()
            body = response.json()
            items.extend(body.get("value") or [])
            url = body.get("nextLink")
        return items

    def _url(self, path: str) -> str:
        return f"{self._endpoint}{path}?api-version={self._api_version}"

    def _send(self, url: str) -> HttpResponse:
        from azure.core.rest import HttpRequest

        return self._client.send_request(HttpRequest("GET", url))


# ---- everything, with the operator's credential ------------------------------------------------------


def build_workspace_client(settings: AzureSettings, credential: TokenCredential) -> Any:
    """An MLClient on the resource group, for workspace operations: no workspace name (it may not exist yet)."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential=credential,
        subscription_id=settings.subscription_id,
        resource_group_name=settings.resource_group,
    )


def provision(
    settings: AzureSettings,
    function_event_types: FunctionEventTypes,
    *,
    dry_run: bool = False,
    echo: Echo | None = None,
) -> list[str]:
    """``bootstrap`` against the real workspace and Resource Manager with DefaultAzureCredential.

    The pipeline's components are staged from this checkout into a temporary directory for the run.
    """
    from azure.identity import DefaultAzureCredential

    from ml_pipeline.dataset import default_task
    from platforms.azure.clients import build_ml_client
    from platforms.azure.components import environment_reference, registrable_components, stage_code
    from platforms.common.model_spec import ModelSpec

    credential = DefaultAzureCredential()
    ml_client = build_ml_client(settings, credential)
    workspace_client = build_workspace_client(settings, credential)
    with tempfile.TemporaryDirectory(prefix="mlops-components-") as staged:
        code = stage_code(Path(staged))
        # The catalogue's steps carry the task the app trains (MLOPS_TASK, else the data's own).
        model = ModelSpec(os.environ.get("MLOPS_TASK") or default_task(settings.training_data))
        components = registrable_components(
            code, environment_reference(settings.environment), settings.training_data, model
        )
        return bootstrap(
            settings,
            ml_client,
            ArmResourceReader(credential),
            function_event_types=function_event_types,
            workspace_client=workspace_client,
            components=components,
            dry_run=dry_run,
            echo=echo,
        )
