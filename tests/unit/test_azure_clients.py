"""The one MLClient builder: functions.bootstrap gives its client to training, registry, production and the tester."""

from __future__ import annotations

from typing import Any

import pytest

from platforms.azure.clients import build_ml_client, credential_or_default
from platforms.azure.settings import AzureSettings, example_env

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


class NoCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token may be requested in a unit test")


def test_the_ml_client_is_for_the_settings_workspace_and_makes_no_call_yet():
    settings = AzureSettings.from_env(example_env())

    client = build_ml_client(settings, NoCredential())

    assert client.subscription_id == settings.subscription_id
    assert client.resource_group_name == settings.resource_group
    assert client.workspace_name == settings.workspace


def test_a_given_credential_is_used_as_it_is():
    credential = NoCredential()
    assert credential_or_default(credential) is credential
