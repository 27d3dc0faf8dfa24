"""Release ids and the names that carry them (image tags), so every later event finds its release."""

from __future__ import annotations

import hashlib
import re

RELEASE_PREFIX = "rel-"
_UNSAFE = re.compile(r"[^a-z0-9-]+")
MAX_RELEASE_ID = 48


def release_id_for_build(build_id: str) -> str:
    """A release id from a build id, safe for image tags: same build, same release."""
    cleaned = _UNSAFE.sub("-", build_id.lower()).strip("-")
    if not cleaned or cleaned != build_id.lower() or len(cleaned) > MAX_RELEASE_ID - 12:
        suffix = hashlib.sha256(build_id.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: MAX_RELEASE_ID - 14]}-{suffix}".strip("-")
    return RELEASE_PREFIX + cleaned


def image_tag(model_version: str, release_id: str) -> str:
    return f"{model_version}-{release_id}"


def release_id_from_image_tag(tag: str) -> str | None:
    version, sep, rest = tag.partition("-")
    if sep and version.isdigit() and rest.startswith(RELEASE_PREFIX):
        return rest
    return None
