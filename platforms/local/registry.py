"""The local model registry: SQLite (``<home>/registry.db``) plus files (``<home>/models/<name>/<version>/``).

Versions are 1, 2, 3… per model name, assigned inside ``BEGIN IMMEDIATE`` so concurrent
registrations (handler threads, or the CLI in another process) never share one. A release
registers at most one model: registering again for the same release returns the first
registration and publishes nothing, which makes a redelivered RunCompleted harmless.
"""

from __future__ import annotations

import builtins
import json
import logging
import shutil
import sqlite3
from pathlib import Path

from functions.domain.refs import ModelRef
from functions.ports import Publisher
from platforms.local.files import utc_now
from platforms.local.sqlite_db import read_connection, write_transaction

logger = logging.getLogger("mlops.registry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    release_id TEXT NOT NULL,
    job TEXT NOT NULL,
    location TEXT NOT NULL,
    source TEXT NOT NULL,
    tags TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    PRIMARY KEY (name, version),
    UNIQUE (name, release_id)
);
CREATE TABLE IF NOT EXISTS champions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    set_at TEXT NOT NULL,
    FOREIGN KEY (name, version) REFERENCES models (name, version)
);
"""


class ModelNotFound(LookupError):
    pass


class LocalRegistry:
    """Registry port; also ``get`` and ``list`` for the CLI."""

    def __init__(self, home: Path, publisher: Publisher, model_name: str = "diabetes-model") -> None:
        self.home = Path(home)
        self.db = self.home / "registry.db"
        self.models = self.home / "models"
        self.publisher = publisher
        self.model_name = model_name

    def register(self, release_id: str, job_name: str, location: str, tags: dict[str, str]) -> ModelRef:
        source = Path(location)
        if not source.is_dir():
            raise FileNotFoundError(f"cannot register the model of job {job_name}: {source} is not a directory")
        all_tags = {**{k: str(v) for k, v in tags.items()}, "release_id": release_id}
        with write_transaction(self.db, SCHEMA) as db:
            existing = db.execute(
                "SELECT * FROM models WHERE name = ? AND release_id = ?", (self.model_name, release_id)
            ).fetchone()
            if existing is not None:
                logger.info("release %s already registered %s:%s", release_id, self.model_name, existing["version"])
                return _model_ref(existing)
            version = db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?", (self.model_name,)
            ).fetchone()[0]
            target = self.models / self.model_name / str(version)
            # A directory here is left over from a registration that never committed.
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            try:
                db.execute(
                    "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.model_name,
                        version,
                        release_id,
                        job_name,
                        str(target),
                        str(source),
                        json.dumps(all_tags, sort_keys=True),
                        utc_now(),
                    ),
                )
            except sqlite3.Error:
                shutil.rmtree(target, ignore_errors=True)
                raise
        model = ModelRef(self.model_name, str(version), str(target), all_tags)
        logger.info("registered %s:%s for release %s", model.name, model.version, release_id)
        self.publisher.publish(
            "Microsoft.MachineLearningServices.ModelRegistered",
            f"models/{model.name}:{version}",
            {
                "ModelName": model.name,
                "ModelVersion": version,
                "ModelTags": all_tags,
                "ModelProperties": {"release_id": release_id, "job": job_name},
            },
        )
        return model

    def champion(self) -> ModelRef | None:
        with read_connection(self.db, SCHEMA) as db:
            row = db.execute(
                "SELECT models.* FROM champions JOIN models USING (name, version) WHERE champions.name = ?",
                (self.model_name,),
            ).fetchone()
        return _model_ref(row) if row else None

    def find(self, name: str, version: str) -> ModelRef | None:
        if not str(version).isdigit():
            return None
        with read_connection(self.db, SCHEMA) as db:
            row = db.execute("SELECT * FROM models WHERE name = ? AND version = ?", (name, int(version))).fetchone()
        return _model_ref(row) if row else None

    def set_champion(self, model: ModelRef) -> None:
        with write_transaction(self.db, SCHEMA) as db:
            if not db.execute(
                "SELECT 1 FROM models WHERE name = ? AND version = ?", (model.name, int(model.version))
            ).fetchone():
                raise ModelNotFound(f"cannot make {model.name}:{model.version} the champion: it is not registered")
            db.execute(
                "INSERT INTO champions VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version, set_at = excluded.set_at",
                (model.name, int(model.version), utc_now()),
            )
        logger.info("champion of %s is now version %s", model.name, model.version)

    def get(self, name: str, version: str | int) -> ModelRef | None:
        with read_connection(self.db, SCHEMA) as db:
            row = db.execute("SELECT * FROM models WHERE name = ? AND version = ?", (name, int(version))).fetchone()
        return _model_ref(row) if row else None

    def list(self, name: str | None = None) -> builtins.list[ModelRef]:
        """Every registered version of ``name`` (default: this registry's model), oldest first."""
        with read_connection(self.db, SCHEMA) as db:
            rows = db.execute(
                "SELECT * FROM models WHERE name = ? ORDER BY version", (name or self.model_name,)
            ).fetchall()
        return [_model_ref(row) for row in rows]


def _model_ref(row: sqlite3.Row) -> ModelRef:
    return ModelRef(row["name"], str(row["version"]), row["location"], json.loads(row["tags"]))
