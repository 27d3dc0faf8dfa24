"""The Deployer port on Azure: staging on Container Instances, production on AKS.

Two halves behind one port; ``follow`` hands an Operation to the half that began it, by its kind.
"""

from __future__ import annotations

from typing import Protocol

from functions.domain.refs import Endpoint, ImageRef, ModelRef, Operation, Progress

STAGING = "staging"  # the kind of the operations the staging half begins


class Staging(Protocol):
    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation: ...

    def remove_staging(self, release_id: str) -> None: ...

    def follow(self, operation: Operation) -> Progress: ...


class Production(Protocol):
    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation: ...

    def direct(self, deployment: str) -> Endpoint: ...

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation: ...

    def can_mirror(self) -> bool: ...

    def traffic(self) -> dict[str, int]: ...

    def deployments(self) -> list[str]: ...

    def remove(self, deployment: str) -> None: ...

    def follow(self, operation: Operation) -> Progress: ...

    def production_endpoint(self) -> Endpoint: ...


class AzureDeployer:
    def __init__(self, staging: Staging, production: Production) -> None:
        self.staging = staging
        self.production = production

    # ---- staging ----------------------------------------------------------------------
    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation:
        return self.staging.begin_staging(release_id, image, model)

    def remove_staging(self, release_id: str) -> None:
        self.staging.remove_staging(release_id)

    # ---- production -------------------------------------------------------------------
    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation:
        return self.production.begin_beside(deployment, image, model)

    def direct(self, deployment: str) -> Endpoint:
        return self.production.direct(deployment)

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation:
        return self.production.begin_traffic(weights, mirror)

    def can_mirror(self) -> bool:
        return self.production.can_mirror()

    def traffic(self) -> dict[str, int]:
        return self.production.traffic()

    def deployments(self) -> list[str]:
        return self.production.deployments()

    def remove(self, deployment: str) -> None:
        self.production.remove(deployment)

    def production_endpoint(self) -> Endpoint:
        return self.production.production_endpoint()

    # ---- both -------------------------------------------------------------------------
    def follow(self, operation: Operation) -> Progress:
        half: Staging | Production = self.staging if operation.kind == STAGING else self.production
        return half.follow(operation)
