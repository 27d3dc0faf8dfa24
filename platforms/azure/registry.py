"""Registry port on the Azure ML model registry of the workspace.

A release registers at most one model version: ``register`` first looks for a version tagged
with the release id and returns it, which makes a redelivered RunCompleted harmless. The
champion is the version tagged ``stage=production`` (the newest, should several ever carry it);
``set_champion`` tags the new one first and only then untags the others, so there is never a
moment without a champion. Tags are updated by writing the fetched model version back
(``models.create_or_update`` with the same name, version and path).

No ModelRegistered event is published here: the workspace's Event Grid system topic emits it.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model
from azure.core.exceptions import ResourceNotFoundError

from functions.domain.refs import ModelRef

if TYPE_CHECKING:
    from platforms.azure.settings import AzureSettings

logger = logging.getLogger("mlops.azure.registry")

STAGE_TAG = "stage"
PRODUCTION = "production"
RELEASE_TAG = "release_id"


class ModelNotFound(LookupError):
    pass


class AzureRegistry:
    """Registry port; also ``get`` and ``list`` for the CLI and tests."""

    def __init__(self, settings: AzureSettings, ml_client: Any) -> None:
        self.settings = settings
        self.ml_client = ml_client
        self.model_name = settings.model_name

    def register(self, release_id: str, job_name: str, location: str, tags: dict[str, str]) -> ModelRef:
        existing = [m for m in self._versions(self.model_name) if (m.tags or {}).get(RELEASE_TAG) == release_id]
        if existing:
            model = _newest(existing)
            logger.info("release %s already registered %s:%s", release_id, model.name, model.version)
            return _model_ref(model)
        all_tags = {str(k): str(v) for k, v in tags.items()}
        all_tags.setdefault("job", job_name)
        all_tags[RELEASE_TAG] = release_id
        all_tags.pop(STAGE_TAG, None)  # production is set by set_champion, never at registration
        created = self.ml_client.models.create_or_update(
            Model(
                name=self.model_name,
                path=location,
                type=AssetTypes.CUSTOM_MODEL,
                description=f"release {release_id}, trained by pipeline job {job_name}",
                tags=all_tags,
            )
        )
        logger.info("registered %s:%s for release %s from %s", created.name, created.version, release_id, location)
        return _model_ref(created)

    def champion(self) -> ModelRef | None:
        production = [m for m in self._versions(self.model_name) if _is_production(m)]
        return _model_ref(_newest(production)) if production else None

    def set_champion(self, model: ModelRef) -> None:
        try:
            chosen = self.ml_client.models.get(name=model.name, version=str(model.version))
        except ResourceNotFoundError:
            why = f"cannot make {model.name}:{model.version} the champion: it is not registered"
            raise ModelNotFound(why) from None
        if not _is_production(chosen):
            chosen.tags = {**(chosen.tags or {}), STAGE_TAG: PRODUCTION}
            self.ml_client.models.create_or_update(chosen)
        for previous in self._versions(model.name):
            if _is_production(previous) and str(previous.version) != str(model.version):
                previous.tags = {k: v for k, v in (previous.tags or {}).items() if k != STAGE_TAG}
                self.ml_client.models.create_or_update(previous)
                logger.info("%s:%s is no longer the champion", previous.name, previous.version)
        logger.info("champion of %s is now version %s", model.name, model.version)

    def find(self, name: str, version: str) -> ModelRef | None:
        try:
            return _model_ref(self.ml_client.models.get(name=name, version=str(version)))
        except ResourceNotFoundError:
            return None

    def get(self, name: str, version: str | int) -> ModelRef | None:
        """``find`` with a version number, for the CLI."""
        return self.find(name, str(version))

    def list(self, name: str | None = None) -> builtins.list[ModelRef]:
        """Every version of ``name`` (default: this registry's model), oldest first."""
        return [_model_ref(m) for m in sorted(self._versions(name or self.model_name), key=_version_key)]

    def _versions(self, name: str) -> builtins.list[Model]:
        try:
            return builtins.list(self.ml_client.models.list(name=name))
        except ResourceNotFoundError:  # no version of this model registered yet
            return []


def _is_production(model: Model) -> bool:
    return (model.tags or {}).get(STAGE_TAG) == PRODUCTION


def _version_key(model: Model) -> tuple[int, str]:
    version = str(model.version)
    return (int(version), version) if version.isdigit() else (-1, version)


def _newest(models: Iterable[Model]) -> Model:
    return max(models, key=_version_key)


def _model_ref(model: Model) -> ModelRef:
    tags = {str(k): str(v) for k, v in (model.tags or {}).items()}
    return ModelRef(str(model.name), str(model.version), f"azureml:{model.name}:{model.version}", tags)
