"""Release ids and the names that carry them (image tags), so every later event finds its release.

A release id names what started it and that thing's own id: ``rel-<origin>-<key>``. For builds the
origin is the CI system (``rel-ado-777``, ``rel-github-777``, ``rel-jenkins-777``), so the same build
number from two systems is two releases while the same build of one system stays one release. The
other origins are ``data`` (new training data), ``schedule``, ``drift`` and ``rollback``, which no
build may claim. Releases made before build systems were recorded have ids without one
(``rel-777``, LEGACY); docs/decisions.md has the migration.
"""

from __future__ import annotations

import hashlib
import re

RELEASE_PREFIX = "rel-"
_UNSAFE = re.compile(r"[^a-z0-9-]+")
MAX_RELEASE_ID = 48

# Build systems the hooks and `mlops publish` name; the generic hook and the custom topic may name
# any other word matching BUILD_SYSTEM (e.g. "bamboo").
ADO, GITHUB, GENERIC, CLI = "ado", "github", "generic", "cli"
KNOWN_BUILD_SYSTEMS = (ADO, GITHUB, "jenkins", "gitlab", "travis", GENERIC, CLI)
BUILD_SYSTEM = re.compile(r"[a-z][a-z0-9]{1,15}")
# Origins that are not builds: a build system of that name would take their ids.
NOT_BUILD_SYSTEMS = frozenset({"data", "schedule", "drift", "rollback", "rel"})


def build_system_problem(system: str) -> str | None:
    """Why ``system`` cannot name a build system, or None when it can."""
    if not BUILD_SYSTEM.fullmatch(system):
        return f"build system {system[:40]!r} must be 2-16 lower-case letters or digits, starting with a letter"
    if system in NOT_BUILD_SYSTEMS:
        return f"build system {system!r} is reserved ({', '.join(sorted(NOT_BUILD_SYSTEMS))} are not build systems)"
    return None


def release_id(origin: str, key: str) -> str:
    """``rel-<origin>-<key>``, safe for image tags; an unsafe or long key is cut and given a hash suffix."""
    return _release_id(f"{origin}-{key}")


def release_id_for_build(build_id: str, system: str = GENERIC) -> str:
    """The release of build ``build_id`` of CI system ``system``: same build, same release."""
    problem = build_system_problem(system)
    if problem:
        raise ValueError(problem)
    return release_id(system, build_id)


def legacy_release_id(build_id: str) -> str:
    """The id a build's release had before build systems were part of it (``rel-<build id>``)."""
    return _release_id(build_id)


def _release_id(name: str) -> str:
    cleaned = _UNSAFE.sub("-", name.lower()).strip("-")
    if not cleaned or cleaned != name.lower() or len(cleaned) > MAX_RELEASE_ID - 12:
        suffix = hashlib.sha256(name.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: MAX_RELEASE_ID - 14]}-{suffix}".strip("-")
    return RELEASE_PREFIX + cleaned


def image_tag(model_version: str, release_id: str) -> str:
    return f"{model_version}-{release_id}"


def release_id_from_image_tag(tag: str) -> str | None:
    version, sep, rest = tag.partition("-")
    if sep and version.isdigit() and rest.startswith(RELEASE_PREFIX):
        return rest
    return None
