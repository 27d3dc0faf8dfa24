"""What kind of model a retraining trains: the task, the estimator, its parameters (both platforms).

Built from the app settings MLOPS_TASK and MLOPS_ESTIMATOR; a build's own parameters override the
estimator's. ``train_options`` are the train step's arguments that say it; the data checks step
needs only ``--task`` (a classification target is checked as class labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    task: str = "regression"
    estimator: str | None = None  # a scikit-learn class path; None: the task's default (ml_pipeline.estimators)
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, task: str, estimator: Mapping[str, Any]) -> ModelSpec:
        """``estimator`` is MLOPS_ESTIMATOR as functions.settings read it: {} or {"estimator", "params"}."""
        return cls(task, estimator.get("estimator"), dict(estimator.get("params") or {}))

    def params_for(self, build_params: Mapping[str, Any]) -> dict[str, Any]:
        """The estimator's configured parameters with the build's on top."""
        return {**self.params, **build_params}

    def task_options(self) -> list[str]:
        return ["--task", self.task]

    def train_options(self) -> list[str]:
        return self.task_options() + (["--estimator", self.estimator] if self.estimator else [])
