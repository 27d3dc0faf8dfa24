"""The one place the Azure adapters get a credential and an MLClient (imported lazily: no SDK at start-up)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from platforms.azure.settings import AzureSettings


def credential_or_default(credential: TokenCredential | None = None) -> TokenCredential:
    """The credential given, else DefaultAzureCredential (managed identity on Azure, `az login` locally)."""
    if credential is not None:
        return credential
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def build_ml_client(settings: AzureSettings, credential: TokenCredential | None = None) -> Any:
    """An MLClient for the settings' workspace. No network until the first call."""
    from azure.ai.ml import MLClient

    return MLClient(
        credential=credential_or_default(credential),
        subscription_id=settings.subscription_id,
        resource_group_name=settings.resource_group,
        workspace_name=settings.workspace,
    )
