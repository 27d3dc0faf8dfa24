"""ACI staging's readiness wait on the real clock and sleep (the unit tests drive a fake clock)."""

from __future__ import annotations

import pytest

from platforms.azure.staging import AciStaging, StagingError
from tests.doubles.azure_mgmt import FakeContainerInstanceClient, ScriptedReadiness
from tests.unit.test_azure_staging import IMAGE, MODEL, RELEASE, SETTINGS


def test_readiness_gives_up_on_the_real_clock_with_a_tiny_interval():
    client = FakeContainerInstanceClient()
    staging = AciStaging(SETTINGS, client, ScriptedReadiness(False), poll_interval_s=0.001, timeout_s=0.02)

    with pytest.raises(StagingError, match="did not answer 200"):
        staging.deploy_staging(RELEASE, IMAGE, MODEL)
