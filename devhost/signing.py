"""How `mlops` proves who is asking: the local user's signature, or a signed link someone was sent.

The host never takes a decider's name from a request body. `mlops approve/reject` sign the exact
method, path and body bytes they send with the key in $MLOPS_HOME (holding that folder is the
credential; functions/entrypoints/identity/local_signature.py has the scheme), as the identity from
`--by`, else `git config user.email`. `--link TOKEN` sends a signed link's token in X-MLOps-Link
instead: the link names who it is for, so nothing is signed. `mlops demo` and the e2e tests sign with
the same code.

A Proof is what HostClient asks for the headers of one request: ``proof(method, path, body)``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from functions.entrypoints.identity.local_signature import load_or_create_key, sign
from functions.settings import SettingsError

LINK_HEADER = "X-MLOps-Link"

# `git config user.email` as a function, so tests can answer for git without starting it.
GitEmail = Callable[[], str]


class Proof(Protocol):
    """The headers that prove who sends this request (method, path as sent, body bytes as sent)."""

    def __call__(self, method: str, path: str, body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True)
class LocalSigner:
    """Signs requests as ``identity`` with the local key (functions.entrypoints.identity.local_signature)."""

    identity: str
    key: bytes = field(repr=False)
    clock: Callable[[], float] = time.time

    @classmethod
    def for_home(cls, home: Path, identity: str, clock: Callable[[], float] = time.time) -> LocalSigner:
        """The signer for ``identity`` with $MLOPS_HOME's key (made on first use, as the host does)."""
        return cls(identity, load_or_create_key(home), clock)

    def __call__(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return sign(self.key, method, path, self.identity, body, int(self.clock()))


@dataclass(frozen=True)
class LinkToken:
    """A signed link's token, sent as it is: the host checks whom it was made for and when it expires."""

    token: str = field(repr=False)

    def __call__(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return {LINK_HEADER: self.token}


def git_user_email(cwd: Path | None = None) -> str:
    """`git config user.email` (the repository's, else the user's), or "" when git has none or is missing."""
    try:
        done = subprocess.run(
            ["git", "config", "user.email"], cwd=cwd, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def local_identity(explicit: str | None, option: str, git_email: GitEmail | None = None) -> str:
    """Who the local user is: ``explicit`` (the command's ``option``), else `git config user.email`.

    Raises SettingsError naming ``option`` when neither gives one.
    """
    if explicit is not None:
        if not explicit.strip():
            raise SettingsError(f"{option} is empty: give an identity such as you@example.com")
        return explicit.strip()
    email = (git_email or _repo_git_email)()
    if not email:
        raise SettingsError(
            f"no identity to sign as: `git config user.email` is not set; pass {option} you@example.com"
        )
    return email


def _repo_git_email() -> str:
    from devhost.settings import REPO_ROOT

    return git_user_email(REPO_ROOT)
