"""The Azure settings' training compute: a named cluster (the default) or serverless compute."""

from __future__ import annotations

import pytest

from functions.settings import SettingsError
from platforms.azure import settings as azure_settings
from platforms.azure.settings import SERVERLESS, AzureSettings, example_env


def test_a_named_cluster_by_default():
    settings = AzureSettings.from_env(example_env())
    assert (settings.compute, settings.serverless) == ("cpu-cluster", False)
    assert AzureSettings.from_env({**example_env(), "AZUREML_COMPUTE": "gpu-nodes"}).serverless is False


def test_serverless_is_a_value_of_azureml_compute():
    settings = AzureSettings.from_env({**example_env(), "AZUREML_COMPUTE": "serverless"})
    assert (settings.compute, settings.serverless) == ("serverless", True)


def test_the_marker_is_azure_ml_s_own():
    from azure.ai.ml.constants._common import SERVERLESS_COMPUTE

    assert SERVERLESS == SERVERLESS_COMPUTE


@pytest.mark.parametrize(
    "value, problem",
    [
        ("Serverless", "AZUREML_COMPUTE='Serverless' is malformed: write 'serverless' for serverless compute"),
        ("SERVERLESS", "AZUREML_COMPUTE='SERVERLESS' is malformed"),
        ("cpu cluster", "AZUREML_COMPUTE='cpu cluster' is malformed"),
        ("x" * 25, "AZUREML_COMPUTE='xxxxxxxxxxxxxxxxxxxxxxxxx' is malformed"),
    ],
)
def test_a_bad_compute_fails_at_start_naming_the_setting(value: str, problem: str):
    with pytest.raises(SettingsError, match=problem):
        AzureSettings.from_env({**example_env(), "AZUREML_COMPUTE": value})


def test_the_setting_says_it_takes_serverless():
    assert "'serverless'" in azure_settings.SETTINGS["AZUREML_COMPUTE"][3]


# ---- AZUREML_APP_INSIGHTS_ID: where the production deployments' requests are read from -------------
def test_the_app_insights_id_is_read():
    settings = AzureSettings.from_env(example_env())
    assert settings.app_insights_id == example_env()["AZUREML_APP_INSIGHTS_ID"]
    lower = example_env()["AZUREML_APP_INSIGHTS_ID"].replace("Microsoft.Insights", "microsoft.insights")
    assert AzureSettings.from_env({**example_env(), "AZUREML_APP_INSIGHTS_ID": lower}).app_insights_id == lower


def test_the_app_insights_id_is_required():
    env = {name: value for name, value in example_env().items() if name != "AZUREML_APP_INSIGHTS_ID"}
    with pytest.raises(SettingsError, match="AZUREML_APP_INSIGHTS_ID is missing \\(resource id of the workspace's"):
        AzureSettings.from_env(env)


@pytest.mark.parametrize(
    "value",
    [
        "mlwmlopsinsights1a2b3c4d",  # a name, not a resource id
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops/providers/"
        "Microsoft.OperationalInsights/workspaces/logs",  # a Log Analytics workspace, not Application Insights
        "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Insights/components/appi",
        "00000000-0000-0000-0000-000000000000",  # an application id
    ],
)
def test_a_malformed_app_insights_id_fails_at_start_naming_the_setting(value: str):
    with pytest.raises(SettingsError, match=f"AZUREML_APP_INSIGHTS_ID={value!r} is malformed"):
        AzureSettings.from_env({**example_env(), "AZUREML_APP_INSIGHTS_ID": value})
