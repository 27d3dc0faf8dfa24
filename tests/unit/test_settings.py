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
        ({"MLOPS_TASK": "ranking"}, "MLOPS_TASK"),
        ({"MLOPS_ESTIMATOR": '{"estimator": "os.system"}'}, "MLOPS_ESTIMATOR"),
        ({"MLOPS_ESTIMATOR": '{"estimator": "sklearn.svm.SVC", "params": {"a b": 1}}'}, "MLOPS_ESTIMATOR"),
        ({"MLOPS_ESTIMATOR": '{"estimator": "sklearn.svm.SVC", "parameters": {}}'}, "MLOPS_ESTIMATOR"),
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


# ---- MLOPS_NOTIFICATION_TARGETS ----------------------------------------------------------------------
def test_notification_targets_are_named_by_format_unless_named_and_hide_their_urls():
    raw = ("teams:https://prod.example/workflows/abc?api-version=1&sig=SECRET "
           "ops=slack:https://hooks.slack.com/services/T/B/SECRET\n"
           "json:http://127.0.0.1:9000/hook second=teams:https://b.example/")  # fmt: skip
    specs = Settings.from_env({"MLOPS_NOTIFICATION_TARGETS": raw}).notification_targets()
    assert [(s.name, s.format) for s in specs] == [("teams", "teams"), ("ops", "slack"), ("json", "json"),
                                                  ("second", "teams")]  # fmt: skip
    assert specs[0].url == "https://prod.example/workflows/abc?api-version=1&sig=SECRET"
    assert "SECRET" not in repr(specs)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("xml:https://a.example/", "entry 1 must be FORMAT:URL or NAME=FORMAT:URL"),
        ("teams:http://a.example/SECRET", "entry 1: the URL must be https"),
        ("teams:https:///SECRET", "entry 1: the URL must be https"),
        ("Ops=teams:https://a.example/SECRET", "entry 1: the name must be"),
        ("file=json:https://a.example/SECRET", "entry 1: the name must be"),
        ("a=teams:https://a.example/ a=json:https://b.example/SECRET", "entry 2: the name 'a' is used twice"),
        ("teams:https://a.example/ teams:https://b.example/SECRET", "entry 2: a second teams target needs a name"),
    ],
)
def test_bad_notification_targets_stop_the_app_naming_the_entry_not_its_url(raw, message):
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env({"MLOPS_NOTIFICATION_TARGETS": raw})
    assert "SECRET" not in str(caught.value)


def test_loopback_http_targets_are_local_only_and_key_vault_references_count_as_none():
    raw = "json:http://127.0.0.1:9000/hook"
    assert len(Settings.from_env({"MLOPS_NOTIFICATION_TARGETS": raw}).notification_targets()) == 1
    with pytest.raises(SettingsError, match="must be https"):
        Settings.from_env({"MLOPS_PLATFORM": "azure", "MLOPS_NOTIFICATION_TARGETS": raw})
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/notify/)"
    assert Settings.from_env({"MLOPS_NOTIFICATION_TARGETS": reference}).notification_targets() == ()


@pytest.mark.parametrize(
    "env, metric, fits",
    [
        ({"MLOPS_GATE_POLICY": '{"metric": "roc_auc"}'}, "roc_auc", "regression metrics: mse, mae, r2"),
        ({"MLOPS_TASK": "classification", "MLOPS_GATE_POLICY": '{"metric": "mse"}'}, "mse", "classification metrics"),
        ({"MLOPS_TRAINING_DATA": "breast_cancer", "MLOPS_GATE_POLICY": '{"metric": "r2"}'}, "r2", "is a regression"),
        ({"MLOPS_TASK": "classification", "MLOPS_GATE_POLICY": '{"metric": "auc"}'}, "auc", "not a metric the"),
        ({"MLOPS_GATE_POLICY": '{"metric": "rmse"}'}, "rmse", "not a metric the evaluation reports"),
    ],
)
def test_a_gate_metric_that_does_not_fit_the_task_stops_the_app_at_start_naming_it(env, metric, fits):
    with pytest.raises(SettingsError, match="MLOPS_GATE_POLICY") as caught:
        Settings.from_env(env)
    assert f"metric {metric!r}" in str(caught.value) and fits in str(caught.value)


def test_the_task_follows_the_built_in_data_and_its_default_metric():
    assert Settings.from_env({}).task == "regression" and Settings.from_env({}).gate_policy.metric == "mse"
    cancer = Settings.from_env({"MLOPS_TRAINING_DATA": "breast_cancer"})
    assert cancer.task == "classification" and cancer.gate_policy.metric == "log_loss"
    named = Settings.from_env({"MLOPS_TASK": "Classification", "MLOPS_GATE_POLICY": '{"metric": "roc_auc"}'})
    assert named.task == "classification" and named.gate_policy.metric == "roc_auc"
    # On Azure the pipeline's data (AZUREML_TRAINING_DATA) is the one whose task counts.
    azure = Settings.from_env({"MLOPS_PLATFORM": "azure", "AZUREML_TRAINING_DATA": "breast_cancer"})
    assert azure.task == "classification"


def test_the_estimator_setting_is_read_as_a_class_path_and_parameters():
    settings = Settings.from_env(
        {"MLOPS_ESTIMATOR": '{"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"max_depth": 4}}'}
    )
    assert settings.estimator == {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"max_depth": 4}}
    assert Settings.from_env({"MLOPS_ESTIMATOR": " "}).estimator == {}
