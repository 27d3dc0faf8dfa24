"""Local "images": a Docker build context per tag, identified by a content digest.

``<home>/images/<repository>/<tag>/`` holds exactly what ``docker build`` would need for the
scoring image (Dockerfile, score.py, requirements.txt from scoring/, and model/), so the
same directory can be built and run by Docker, and the local deployer serves score.py and
model/ from it directly. The digest is a sha256 over the sorted relative paths and file
contents: the same model and scoring files always give the same digest. The index of
pushed images is SQLite (``<home>/images.db``), and a push publishes ACR's ImagePushed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path

from functions.domain.ids import image_tag
from functions.domain.refs import ImageRef, ModelRef
from functions.ports import Publisher
from platforms.local.events import event_time
from platforms.local.files import utc_now
from platforms.local.paths import REPO_ROOT
from platforms.local.sqlite_db import read_connection, write_transaction

logger = logging.getLogger("mlops.images")

SCORING_DIR = REPO_ROOT / "scoring"
CONTEXT_FILES = ("Dockerfile", "score.py", "requirements.txt")
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
REGISTRY_HOST = "local.azurecr.io"
SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    location TEXT NOT NULL,
    release_id TEXT NOT NULL,
    model TEXT NOT NULL,
    pushed_at TEXT NOT NULL,
    PRIMARY KEY (repository, tag)
);
"""


def context_digest(directory: Path) -> tuple[str, int]:
    """``sha256:<hex>`` over the sorted relative paths and contents of every file, and their total size."""
    digest = hashlib.sha256()
    size = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        content = path.read_bytes()
        relative = path.relative_to(directory).as_posix().encode()
        # Length prefixes keep (path, content) pairs from running into each other.
        digest.update(b"%d:%s%d:" % (len(relative), relative, len(content)))
        digest.update(content)
        size += len(content)
    return f"sha256:{digest.hexdigest()}", size


class LocalImages:
    """Images port: assemble and index the scoring image's build context for a model."""

    def __init__(self, home: Path, publisher: Publisher, repository: str = "diabetes-scoring") -> None:
        self.home = Path(home)
        self.db = self.home / "images.db"
        self.contexts = self.home / "images" / repository
        self.publisher = publisher
        self.repository = repository

    def build(self, release_id: str, model: ModelRef) -> ImageRef:
        model_dir = Path(model.location)
        if not model_dir.is_dir():
            raise FileNotFoundError(f"cannot package {model.name}:{model.version}: {model_dir} is not a directory")
        tag = image_tag(model.version, release_id)
        self.contexts.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{tag}.", dir=self.contexts))
        try:
            for name in CONTEXT_FILES:
                shutil.copy2(SCORING_DIR / name, staged / name)
            shutil.copytree(model_dir, staged / "model")
            digest, size = context_digest(staged)
            image = ImageRef(self.repository, tag, digest, str(self.contexts / tag))
            with write_transaction(self.db, SCHEMA) as db:
                row = db.execute(
                    "SELECT digest FROM images WHERE repository = ? AND tag = ?", (self.repository, tag)
                ).fetchone()
                if row is not None and row["digest"] == digest and Path(image.location).is_dir():
                    logger.info("image %s already pushed with digest %s", image.reference, digest)
                    return image
                self._replace_context(staged, Path(image.location))
                db.execute(
                    "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.repository, tag, digest, size, image.location, release_id, _model_id(model), utc_now()),
                )
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        logger.info("pushed %s (%s)", image.reference, digest)
        self.publisher.publish("Microsoft.ContainerRegistry.ImagePushed", image.reference, _pushed(image, size))
        return image

    def lookup(self, repository: str, tag: str) -> ImageRef | None:
        with read_connection(self.db, SCHEMA) as db:
            row = db.execute("SELECT * FROM images WHERE repository = ? AND tag = ?", (repository, tag)).fetchone()
        return _image_ref(row) if row else None

    @staticmethod
    def _replace_context(staged: Path, final: Path) -> None:
        # Rename, not copy, so a reader never sees a half-written context; the old one goes aside first.
        if final.exists():
            retired = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            final.rename(retired)
            shutil.rmtree(retired, ignore_errors=True)
        staged.rename(final)


def _model_id(model: ModelRef) -> str:
    return f"{model.name}:{model.version}"


def _image_ref(row: sqlite3.Row) -> ImageRef:
    return ImageRef(row["repository"], row["tag"], row["digest"], row["location"])


def _pushed(image: ImageRef, size: int) -> dict[str, object]:
    """ImagePushed data as Azure Container Registry sends it."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": event_time(),
        "action": "push",
        "target": {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "size": size,
            "digest": image.digest,
            "length": size,
            "repository": image.repository,
            "tag": image.tag,
        },
        "request": {"id": str(uuid.uuid4()), "host": REGISTRY_HOST, "method": "PUT", "useragent": "mlops-local"},
    }
