"""functions.bootstrap: the one composition root wires one clock, one link builder and the settings."""

from __future__ import annotations

from pathlib import Path

from functions.bootstrap import build_orchestrator
from functions.links import Links
from functions.settings import Settings
from platforms.local.events import LocalEventBus
from tests.doubles.clock import Clock


def test_the_service_and_the_local_bus_read_the_same_injected_clock(tmp_path: Path):
    clock = Clock()
    settings = Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_PUBLIC_URL": "https://mlops.example.com"})
    orchestrator = build_orchestrator(settings, clock=clock)
    bus = orchestrator.ports.publisher
    assert isinstance(bus, LocalEventBus)
    assert orchestrator.ctx.clock is clock and bus.clock is clock
    assert orchestrator.ctx.links == Links("https://mlops.example.com")


def test_hook_secrets_are_read_from_the_live_environment(monkeypatch):
    settings = Settings.from_env()
    monkeypatch.setenv("MLOPS_HOOK_SECRET", "first")
    assert settings.hook_secrets().ado_secret == "first"
    monkeypatch.setenv("MLOPS_HOOK_SECRET", "rotated")
    assert settings.hook_secrets().ado_secret == "rotated"
