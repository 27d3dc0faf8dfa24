"""The composition root: picks the platform from settings and wires adapters into the orchestrator."""

from __future__ import annotations

from functools import cache

from functions.orchestrator import Orchestrator, Ports, Timeouts
from functions.settings import Settings, SettingsError


def build_orchestrator(settings: Settings | None = None) -> Orchestrator:
    settings = settings or Settings.from_env()
    if settings.platform == "local":
        ports = _local_ports(settings)
    else:
        raise SettingsError("MLOPS_PLATFORM=azure: the Azure adapters are not part of this version; use local")
    return Orchestrator(
        ports,
        policy=settings.gate_policy,
        timeouts=Timeouts(approval=settings.approval_timeout),
        public_url=settings.public_url,
    )


def _local_ports(settings: Settings) -> Ports:
    # Imported here so the Azure platform never loads local-only modules, and the reverse.
    from platforms.local.deployer import LocalDeployer
    from platforms.local.events import LocalEventBus
    from platforms.local.images import LocalImages
    from platforms.local.notifier import LocalNotifier
    from platforms.local.registry import LocalRegistry
    from platforms.local.store import SqliteReleaseStore
    from platforms.local.testing import HttpEndpointTester
    from platforms.local.training import LocalTraining

    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    bus = LocalEventBus(home, settings.host_url)
    return Ports(
        store=SqliteReleaseStore(home / "releases.db"),
        training=LocalTraining(home, bus, data=settings.training_data),
        registry=LocalRegistry(home, bus),
        images=LocalImages(home, bus),
        deployer=LocalDeployer(home, production_port=settings.production_port),
        tester=HttpEndpointTester(data=settings.training_data),
        notifier=LocalNotifier(home),
        publisher=bus,
    )


@cache
def orchestrator() -> Orchestrator:
    """The app's one orchestrator, built on first use (not at import: keeps start-up fast)."""
    return build_orchestrator()
