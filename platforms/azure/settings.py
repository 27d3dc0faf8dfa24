"""Every setting the Azure adapters read, read in one place; a missing or malformed one fails at
start-up with an error naming it (functions.settings.SettingsError)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from functions.settings import SettingsError
from ml_pipeline.dataset import BUILTIN_DATASETS

# AZUREML_COMPUTE's special value: the pipeline steps run on Azure ML serverless compute, no cluster.
# (azure-ai-ml's own marker for it, azure.ai.ml.constants._common.SERVERLESS_COMPUTE; not imported: no SDK at start-up.)
SERVERLESS = "serverless"
# The VM size training runs on: the cluster's nodes (`mlops azure bootstrap`), or each serverless step.
TRAINING_VM_SIZE = "STANDARD_DS3_V2"

# An Application Insights component's resource id (ARM spells the provider Microsoft.Insights or microsoft.insights).
APP_INSIGHTS_ID = (
    r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[\w.()-]{1,90}"
    r"/providers/[Mm]icrosoft\.[Ii]nsights/components/[\w.()-]{1,260}"
)

# name -> (required, default, pattern the value must match, what it is)
SETTINGS: dict[str, tuple[bool, str, str, str]] = {
    "AZURE_SUBSCRIPTION_ID": (True, "", r"[0-9a-fA-F-]{36}", "subscription of the workspace, registry and AKS"),
    "AZURE_RESOURCE_GROUP": (True, "", r"[\w.()-]{1,90}", "resource group of the workspace and registry"),
    "AZUREML_WORKSPACE": (True, "", r"[\w-]{2,33}", "Azure ML workspace name"),
    "AZUREML_COMPUTE": (
        False,
        "cpu-cluster",
        r"[\w-]{2,24}",
        f"compute cluster the pipeline runs on, or '{SERVERLESS}' for Azure ML serverless compute",
    ),
    "AZUREML_ENVIRONMENT": (False, "diabetes-train-env", r"[\w.-]{1,255}", "environment of the pipeline steps"),
    "AZUREML_EXPERIMENT": (False, "diabetes-retraining", r"[\w.-]{1,255}", "experiment the jobs go to"),
    "AZUREML_TRAINING_DATA": (
        False,
        "diabetes",
        r".+",
        "'diabetes', 'breast_cancer' or a data asset URI (azureml:name:version)",
    ),
    "AZUREML_TEST_DATA": (False, "", r".+\.csv", "CSV of rows for endpoint tests, shipped with the app (data assets)"),
    "AZUREML_MODEL_NAME": (False, "diabetes-model", r"[\w.-]{1,255}", "registered model name"),
    "AZUREML_AKS_COMPUTE": (True, "", r"[\w-]{2,24}", "Kubernetes compute attached to the workspace"),
    "AZUREML_ENDPOINT": (False, "diabetes-prod", r"[a-z][a-z0-9-]{2,31}", "Kubernetes online endpoint name"),
    "AZUREML_APP_INSIGHTS_ID": (
        True,
        "",
        APP_INSIGHTS_ID,
        "resource id of the workspace's Application Insights, where the production deployments log their "
        "requests (a rollout's evidence): /subscriptions/<id>/resourceGroups/<group>/providers/"
        "Microsoft.Insights/components/<name>",
    ),
    "ACR_NAME": (True, "", r"[a-zA-Z0-9]{5,50}", "container registry name (without .azurecr.io)"),
    "ACR_REPOSITORY": (False, "diabetes-scoring", r"[a-z0-9][a-z0-9._/-]*", "repository of the scoring image"),
    "ACI_LOCATION": (True, "", r"[a-z0-9]+", "Azure region of the staging container groups"),
    "ACI_RESOURCE_GROUP": (False, "", r"[\w.()-]{0,90}", "resource group for staging (default: AZURE_RESOURCE_GROUP)"),
    "ACI_IDENTITY": (True, "", r"/subscriptions/.+/userAssignedIdentities/.+", "identity that pulls from ACR"),
    "MLOPS_TABLES_ENDPOINT": (
        True,
        "",
        r"https?://.+",
        "Table Storage endpoint, e.g. https://acct.table.core.windows.net",
    ),
    "MLOPS_TABLES_NAME": (False, "releases", r"[A-Za-z][A-Za-z0-9]{2,51}", "table name prefix"),
    "EVENTGRID_TOPIC_ENDPOINT": (True, "", r"https://.+", "custom topic endpoint for MLOps.* events"),
}


@dataclass(frozen=True)
class AzureSettings:
    subscription_id: str
    resource_group: str
    workspace: str
    compute: str
    environment: str
    experiment: str
    training_data: str
    test_data: str
    model_name: str
    aks_compute: str
    endpoint: str
    app_insights_id: str
    acr_name: str
    repository: str
    aci_location: str
    aci_resource_group: str
    aci_identity: str
    tables_endpoint: str
    tables_name: str
    topic_endpoint: str

    @property
    def serverless(self) -> bool:
        """Training runs on serverless compute (AZUREML_COMPUTE=serverless), not on a named cluster."""
        return self.compute == SERVERLESS

    @property
    def login_server(self) -> str:
        return f"{self.acr_name.lower()}.azurecr.io"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AzureSettings:
        env = os.environ if env is None else env
        values: dict[str, str] = {}
        problems: list[str] = []
        for name, (required, default, pattern, meaning) in SETTINGS.items():
            value = (env.get(name) or "").strip() or default
            if required and not value:
                problems.append(f"{name} is missing ({meaning})")
            elif value and not re.fullmatch(pattern, value):
                problems.append(f"{name}={value!r} is malformed ({meaning})")
            values[name] = value
        compute = values["AZUREML_COMPUTE"]
        if compute != SERVERLESS and compute.lower() == SERVERLESS:
            # Azure ML would take it for the name of a cluster (and bootstrap would create one by that name).
            problems.append(f"AZUREML_COMPUTE={compute!r} is malformed: write {SERVERLESS!r} for serverless compute")
        if values["AZUREML_TRAINING_DATA"] not in BUILTIN_DATASETS and not values["AZUREML_TEST_DATA"]:
            problems.append("AZUREML_TEST_DATA is missing (needed when AZUREML_TRAINING_DATA is a data asset)")
        if problems:
            raise SettingsError("Azure settings: " + "; ".join(problems))
        return cls(
            subscription_id=values["AZURE_SUBSCRIPTION_ID"],
            resource_group=values["AZURE_RESOURCE_GROUP"],
            workspace=values["AZUREML_WORKSPACE"],
            compute=values["AZUREML_COMPUTE"],
            environment=values["AZUREML_ENVIRONMENT"],
            experiment=values["AZUREML_EXPERIMENT"],
            training_data=values["AZUREML_TRAINING_DATA"],
            test_data=values["AZUREML_TEST_DATA"],
            model_name=values["AZUREML_MODEL_NAME"],
            aks_compute=values["AZUREML_AKS_COMPUTE"],
            endpoint=values["AZUREML_ENDPOINT"],
            app_insights_id=values["AZUREML_APP_INSIGHTS_ID"],
            acr_name=values["ACR_NAME"],
            repository=values["ACR_REPOSITORY"],
            aci_location=values["ACI_LOCATION"],
            aci_resource_group=values["ACI_RESOURCE_GROUP"] or values["AZURE_RESOURCE_GROUP"],
            aci_identity=values["ACI_IDENTITY"],
            tables_endpoint=values["MLOPS_TABLES_ENDPOINT"],
            tables_name=values["MLOPS_TABLES_NAME"],
            topic_endpoint=values["EVENTGRID_TOPIC_ENDPOINT"],
        )


def example_env() -> dict[str, str]:
    """A complete, well-formed settings set (tests, docs, local.settings.sample.json)."""
    return {
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_RESOURCE_GROUP": "rg-mlops",
        "AZUREML_WORKSPACE": "mlw-mlops",
        "AZUREML_AKS_COMPUTE": "aks-prod",
        "AZUREML_APP_INSIGHTS_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops/"
        "providers/Microsoft.Insights/components/mlwmlopsinsights1a2b3c4d",
        "ACR_NAME": "crmlops",
        "ACI_LOCATION": "westeurope",
        "ACI_IDENTITY": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/id-mlops-acrpull",
        "MLOPS_TABLES_ENDPOINT": "https://stmlops.table.core.windows.net",
        "EVENTGRID_TOPIC_ENDPOINT": "https://egt-mlops-builds.westeurope-1.eventgrid.azure.net/api/events",
    }
