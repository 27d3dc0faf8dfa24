"""The Deployer port on Azure: staging on Container Instances, production on AKS."""

from __future__ import annotations

from typing import Protocol

from functions.domain.refs import Endpoint, ImageRef, ModelRef


class Staging(Protocol):
    def deploy_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint: ...

    def remove_staging(self, release_id: str) -> None: ...


class Production(Protocol):
    def deploy_production(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint: ...

    def rollback_production(self, release_id: str) -> Endpoint | None: ...


class AzureDeployer:
    def __init__(self, staging: Staging, production: Production) -> None:
        self.staging = staging
        self.production = production

    def deploy_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint:
        return self.staging.deploy_staging(release_id, image, model)

    def remove_staging(self, release_id: str) -> None:
        self.staging.remove_staging(release_id)

    def deploy_production(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint:
        return self.production.deploy_production(release_id, image, model)

    def rollback_production(self, release_id: str) -> Endpoint | None:
        return self.production.rollback_production(release_id)
