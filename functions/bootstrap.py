"""The composition root: picks the platform from settings and wires adapters into the service.

The only module that names adapters. Entry points get the service's Context and the settings from
here (`context()`, `settings()`) and call the service module that does the job with it; scripts and
tests use the same wiring through `build_orchestrator`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from functions.links import Links
from functions.ports import Clock, Notifier, ReleaseStore
from functions.service.context import Context, Ports, Timeouts, utc_now
from functions.service.orchestrator import Orchestrator
from functions.settings import Settings

if TYPE_CHECKING:
    from platforms.common.notify.webhook import Channel


def build_orchestrator(settings: Settings | None = None, clock: Clock = utc_now) -> Orchestrator:
    """The service for ``settings``; ``clock`` is the one clock of the service and the local bus."""
    settings = settings or Settings.from_env()
    links = Links(settings.public_url)
    if settings.platform == "local":
        return Orchestrator(
            _local_ports(settings, clock),
            links=links,
            policy=settings.gate_policy,
            approval_policy=settings.approval_policy,
            timeouts=_timeouts(settings),
            rollout_policy=settings.rollout_policy,
            clock=clock,
            retrain_schedule=settings.retrain_schedule,
            trust_generic_requester=settings.trust_generic_requester,
            data_trigger=settings.data_trigger,
        )
    # The long Azure steps (an AKS rollout, an ACI group coming up) are operations the follow timer
    # watches (Timeouts.operation_max); a claimed step without one is retried by reconcile only after
    # host.json's functionTimeout (30 min), so it never races an invocation that is still running.
    return Orchestrator(
        _azure_ports(settings),
        links=links,
        policy=settings.gate_policy,
        approval_policy=settings.approval_policy,
        timeouts=_timeouts(settings, claimed_step=timedelta(minutes=35)),
        rollout_policy=settings.rollout_policy,
        promote_inline=False,
        clock=clock,
        trust_published_requester=False,
        retrain_schedule=settings.retrain_schedule,
        trust_generic_requester=settings.trust_generic_requester,
        data_trigger=settings.data_trigger,
    )


def _timeouts(settings: Settings, claimed_step: timedelta = Timeouts.claimed_step) -> Timeouts:
    """The timeouts the settings choose; the platform may hold a claimed step longer (Azure's 35 minutes)."""
    check = settings.missed_event_check
    return Timeouts(
        approval=settings.approval_timeout,
        parked_event=settings.parked_event_ttl,
        claimed_step=claimed_step,
        training_check=check or Timeouts.training_check,
        packaging_check=check or Timeouts.packaging_check,
    )


def release_store(settings: Settings) -> ReleaseStore:
    """The platform's release store alone, for commands that only read or migrate records."""
    if settings.platform == "local":
        from platforms.local.store import SqliteReleaseStore

        settings.home.mkdir(parents=True, exist_ok=True)
        return SqliteReleaseStore(settings.home / "releases.db")
    from azure.identity import DefaultAzureCredential

    from platforms.azure.settings import AzureSettings
    from platforms.azure.table_store import TableReleaseStore

    return TableReleaseStore.from_settings(AzureSettings.from_env(), DefaultAzureCredential())


def _local_ports(settings: Settings, clock: Clock) -> Ports:
    # Imported here so the Azure platform never loads local-only modules, and the reverse.
    from platforms.common.endpoint_tests import HttpEndpointTester
    from platforms.common.model_spec import ModelSpec
    from platforms.local.chaos import EventChaos
    from platforms.local.deployer import LocalDeployer
    from platforms.local.events import LocalEventBus
    from platforms.local.evidence import RouterEvidence
    from platforms.local.images import LocalImages
    from platforms.local.instances import ProcessInstances
    from platforms.local.notifier import FILE_TARGET, NotificationFile
    from platforms.local.registry import LocalRegistry
    from platforms.local.training import LocalTraining

    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    chaos = EventChaos(home, settings.local_event_chaos) if settings.local_event_chaos else None
    bus = LocalEventBus(home, settings.host_url, clock=clock, chaos=chaos)
    training = LocalTraining(
        home, bus, data=settings.training_data, model=ModelSpec.from_settings(settings.task, settings.estimator)
    )
    training.adopt_jobs()  # jobs a host that died started: their ends are announced from here on
    store = release_store(settings)
    if settings.local_crash_after:  # a test switch, never on by default (docs/reliability.md)
        from platforms.local.crash_point import crash_after
        from platforms.local.store import SqliteReleaseStore

        assert isinstance(store, SqliteReleaseStore)
        store.after_save = crash_after(settings.local_crash_after, home / "crash_point.fired")
    return Ports(
        store=store,
        training=training,
        registry=LocalRegistry(home, bus),
        images=LocalImages(home, bus),
        deployer=LocalDeployer(home, production_port=settings.production_port, fault=settings.local_fault),
        tester=HttpEndpointTester(data=settings.training_data),
        notifier=_notification_targets(settings, {FILE_TARGET: NotificationFile(home)}),
        publisher=bus,
        evidence=RouterEvidence(f"http://127.0.0.1:{settings.production_port}"),
        instances=ProcessInstances(),
    )


def _notification_targets(settings: Settings, own: dict[str, Channel]) -> Notifier:
    """The platform's own channels and the webhooks of MLOPS_NOTIFICATION_TARGETS, each a target."""
    from platforms.common.notify.webhook import Targets, WebhookTarget

    webhooks = {spec.name: WebhookTarget(spec.name, spec.format, spec.url) for spec in settings.notification_targets()}
    return Targets({**own, **webhooks})


def _azure_ports(settings: Settings) -> Ports:
    """Azure adapters with one DefaultAzureCredential (the Function App's managed identity)."""
    import tempfile
    from functools import partial
    from pathlib import Path

    from azure.identity import DefaultAzureCredential

    from platforms.azure.clients import build_ml_client
    from platforms.azure.deployer import AzureDeployer
    from platforms.azure.evidence import AppInsightsEvidence
    from platforms.azure.images import AcrImages, AcrTasksClient
    from platforms.azure.instances import AppServiceInstances
    from platforms.azure.models import download_model
    from platforms.azure.notifier import TOPIC_TARGET, TopicNotificationChannel
    from platforms.azure.production import AksProduction
    from platforms.azure.publisher import EventGridPublisher
    from platforms.azure.registry import AzureRegistry
    from platforms.azure.settings import AzureSettings
    from platforms.azure.staging import AciStaging
    from platforms.azure.table_store import TableReleaseStore
    from platforms.azure.testing import AzureEndpointTester
    from platforms.azure.training import AzureTraining
    from platforms.common.model_spec import ModelSpec

    azure = AzureSettings.from_env()  # fails here, naming every missing or malformed setting
    credential = DefaultAzureCredential()
    ml_client = build_ml_client(azure, credential)
    model_files = partial(download_model, ml_client)
    publisher = EventGridPublisher.from_settings(azure, credential)
    production = AksProduction(azure, ml_client)
    return Ports(
        store=TableReleaseStore.from_settings(azure, credential),
        training=AzureTraining(
            azure,
            ml_client,
            Path(tempfile.gettempdir()) / "mlops-azure",
            model=ModelSpec.from_settings(settings.task, settings.estimator),
        ),
        registry=AzureRegistry(azure, ml_client),
        images=AcrImages(azure, AcrTasksClient.from_settings(azure, credential), model_files),
        deployer=AzureDeployer(AciStaging.from_settings(azure, credential), production),
        # The endpoint tests need rows of the training data's schema on local disk.
        tester=AzureEndpointTester(ml_client, azure, model_files, data=azure.test_data or azure.training_data),
        notifier=_notification_targets(settings, {TOPIC_TARGET: TopicNotificationChannel(publisher)}),
        publisher=publisher,
        # The deployments' requests in the workspace's Application Insights (AZUREML_APP_INSIGHTS_ID).
        evidence=AppInsightsEvidence.from_settings(azure, credential, production),
        instances=AppServiceInstances(),
    )


@cache
def settings() -> Settings:
    """The app's settings, read once (secrets inside are read again per request: Settings.hook_secrets)."""
    return Settings.from_env()


@cache
def context() -> Context:
    """The app's one service context, built on first use (not at import: keeps start-up fast)."""
    return build_orchestrator(settings()).ctx
