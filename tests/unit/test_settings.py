from __future__ import annotations

from datetime import timedelta

import pytest

from functions.settings import Settings, SettingsError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.platform == "local" and settings.host_url == "http://127.0.0.1:7071"
    assert settings.public_url == settings.host_url and settings.production_port == 5101
    assert settings.home.name == ".mlops" and settings.approval_timeout == timedelta(hours=72)


def test_values_are_read():
    settings = Settings.from_env(
        {
            "MLOPS_HOST_URL": "http://127.0.0.1:8080/",
            "MLOPS_PRODUCTION_PORT": "6000",
            "MLOPS_APPROVAL_TIMEOUT_HOURS": "0.5",
            "MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 25}',
        }
    )
    assert settings.host_url == "http://127.0.0.1:8080" and settings.public_url == "http://127.0.0.1:8080"
    assert settings.production_port == 6000 and settings.approval_timeout == timedelta(minutes=30)
    assert settings.gate_policy.mode == "non_inferiority" and settings.gate_policy.margin == 25


@pytest.mark.parametrize(
    "env, named",
    [
        ({"MLOPS_PLATFORM": "gcp"}, "MLOPS_PLATFORM"),
        ({"MLOPS_HOST_URL": "localhost:7071"}, "MLOPS_HOST_URL"),
        ({"MLOPS_PRODUCTION_PORT": "http"}, "MLOPS_PRODUCTION_PORT"),
        ({"MLOPS_PRODUCTION_PORT": "70000"}, "MLOPS_PRODUCTION_PORT"),
        ({"MLOPS_APPROVAL_TIMEOUT_HOURS": "-1"}, "MLOPS_APPROVAL_TIMEOUT_HOURS"),
        ({"MLOPS_GATE_POLICY": "{nope"}, "MLOPS_GATE_POLICY"),
        ({"MLOPS_GATE_POLICY": '{"mode": "better"}'}, "MLOPS_GATE_POLICY"),
        ({"MLOPS_GATE_POLICY": '{"treshold": 1}'}, "MLOPS_GATE_POLICY"),
    ],
)
def test_bad_settings_fail_naming_the_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_the_azure_platform_fails_at_start_naming_every_missing_setting(monkeypatch):
    from functions.bootstrap import build_orchestrator
    from platforms.azure.settings import SETTINGS

    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACR_NAME", "bad name!")
    with pytest.raises(SettingsError) as caught:
        build_orchestrator(Settings.from_env({"MLOPS_PLATFORM": "azure"}))
    message = str(caught.value)
    required = [name for name, (is_required, *_rest) in SETTINGS.items() if is_required and name != "ACR_NAME"]
    assert all(f"{name} is missing" in message for name in required)
    assert "ACR_NAME='bad name!' is malformed" in message


def test_a_data_asset_needs_test_rows_on_disk():
    from platforms.azure.settings import AzureSettings, example_env

    env = {**example_env(), "AZUREML_TRAINING_DATA": "azureml:diabetes-csv:3"}
    with pytest.raises(SettingsError, match="AZUREML_TEST_DATA is missing"):
        AzureSettings.from_env(env)
    settings = AzureSettings.from_env({**env, "AZUREML_TEST_DATA": "testdata/rows.csv"})
    assert settings.test_data == "testdata/rows.csv"
