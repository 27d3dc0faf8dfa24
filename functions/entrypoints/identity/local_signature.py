"""The local CLI's proof of identity: an HMAC over the request with a key only `$MLOPS_HOME` holds.

Holding `$MLOPS_HOME` is the credential, as holding a kubeconfig is. `mlops approve/reject` sign as the
local user (`--by`, default `git config user.email`); the host checks the signature with the same key.

    canonical = METHOD \\n PATH \\n TIMESTAMP \\n IDENTITY \\n sha256hex(BODY)
    X-MLOps-Identity: alice@example.com
    X-MLOps-Timestamp: 1764633600            (Unix seconds; accepted within WINDOW_S of the host's clock)
    X-MLOps-Signature: hex(HMAC-SHA256(key, canonical))

A replay within the window repeats a decision already recorded (the same approver twice is a 409).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "approval.key"
WINDOW_S = 300
IDENTITY_HEADER = "X-MLOps-Identity"
TIMESTAMP_HEADER = "X-MLOps-Timestamp"
SIGNATURE_HEADER = "X-MLOps-Signature"


class BadSignature(ValueError):
    """Missing, malformed, expired or forged; the message says which, never the key or the signature."""


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def load_or_create_key(home: Path) -> bytes:
    """The local signing key, made once (32 random bytes as 64 hex digits, mode 0600 from birth) on first use.

    A key file that is not exactly that (empty, truncated) is refused: an empty HMAC key would let
    anyone sign as anyone."""
    path = key_path(home)
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two first uses never both write; 0o600 at creation: never readable by others
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(32))
                handle.flush()
                os.fsync(handle.fileno())
    key = path.read_text(encoding="ascii", errors="replace").strip()
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise BadSignature(f"the signing key {path} is damaged (not 64 hex digits): delete it; a new one is made")
    return key.encode()


def canonical(method: str, path: str, timestamp: str, identity: str, body: bytes) -> bytes:
    return "\n".join((method.upper(), path, timestamp, identity, hashlib.sha256(body).hexdigest())).encode()


def sign(key: bytes, method: str, path: str, identity: str, body: bytes, now_s: int) -> dict[str, str]:
    """The headers that prove ``identity`` for this request."""
    timestamp = str(now_s)
    signature = hmac.new(key, canonical(method, path, timestamp, identity, body), hashlib.sha256).hexdigest()
    return {IDENTITY_HEADER: identity, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}


@dataclass(frozen=True)
class Signed:
    identity: str


def verify(key: bytes, method: str, path: str, headers: Mapping[str, str], body: bytes, now_s: int) -> Signed | None:
    """The signed identity; None when the request carries no signature at all; BadSignature when it is wrong."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(SIGNATURE_HEADER.lower())
    if signature is None:
        return None
    identity = (lowered.get(IDENTITY_HEADER.lower()) or "").strip()
    timestamp = (lowered.get(TIMESTAMP_HEADER.lower()) or "").strip()
    if not identity or not timestamp.isdecimal() or len(timestamp) > 12:
        raise BadSignature(f"a signed request needs {IDENTITY_HEADER} and a {TIMESTAMP_HEADER} in Unix seconds")
    if abs(now_s - int(timestamp)) > WINDOW_S:
        raise BadSignature(f"the signature's timestamp is more than {WINDOW_S} s from the host's clock")
    expected = hmac.new(key, canonical(method, path, timestamp, identity, body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.strip().encode("utf-8", "replace"), expected.encode()):
        raise BadSignature("the signature does not match (signed with another $MLOPS_HOME's key?)")
    return Signed(identity)
