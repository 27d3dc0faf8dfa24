"""functions.entrypoints.identity.signed_links: base64url(JSON) "." base64url(HMAC-SHA256), single use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from pathlib import Path

import pytest

from functions.entrypoints.identity import local_signature, signed_links
from functions.entrypoints.identity.authenticate import link_secret
from functions.entrypoints.identity.signed_links import (
    ExpiredLink,
    ForgedLink,
    Link,
    SpentLink,
    WrongLink,
    mint,
    spend,
    verify,
)
from functions.settings import Settings
from tests.doubles.ports import InMemoryReleaseStore

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_795_000_000
RELEASE = "rel-1234"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_the_token_is_base64url_json_dot_base64url_hmac_sha256():
    token = mint(SECRET, RELEASE, "approve", " bob@example.com ", NOW + 3600, nonce="n-1")
    payload, signature = token.split(".")
    assert "=" not in token and set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert document == {
        "release": RELEASE,
        "action": "approve",
        "identity": "bob@example.com",
        "expires": NOW + 3600,
        "nonce": "n-1",
    }
    assert signature == b64url(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest())


def test_verify_gives_the_link_back():
    token = mint(SECRET, RELEASE, "decline", "bob@example.com", NOW + 60, nonce="n-2")
    assert verify(SECRET, token, NOW, RELEASE, "decline") == Link(
        RELEASE, "decline", "bob@example.com", NOW + 60, "n-2"
    )
    assert verify(SECRET, f"  {token}\t", NOW).nonce == "n-2"  # header whitespace


def test_nonces_are_random_by_default():
    first, second = (verify(SECRET, mint(SECRET, RELEASE, "approve", "b", NOW + 60), NOW) for _ in range(2))
    assert first.nonce != second.nonce and len(first.nonce) >= 20


def test_another_secret_or_a_changed_payload_is_forged():
    token = mint(SECRET, RELEASE, "approve", "bob@example.com", NOW + 60)
    with pytest.raises(ForgedLink):
        verify(b"another secret", token, NOW)
    payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document["identity"] = "mallory@example.com"
    with pytest.raises(ForgedLink):
        verify(SECRET, b64url(json.dumps(document).encode()) + "." + signature, NOW)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.é", "x" * 5000 + ".y", "!!.??"])
def test_garbled_tokens_are_forged(token):
    with pytest.raises(ForgedLink):
        verify(SECRET, token, NOW)


def test_a_signed_payload_with_the_wrong_fields_is_refused():
    def signed(document: object) -> str:
        payload = b64url(json.dumps(document).encode())
        return payload + "." + b64url(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest())

    good = {"release": RELEASE, "action": "approve", "identity": "b", "expires": NOW + 60, "nonce": "n"}
    assert verify(SECRET, signed(good), NOW).identity == "b"
    for bad in ({**good, "extra": 1}, {**good, "expires": "soon"}, {**good, "expires": True}, {**good, "nonce": " "},
                {**good, "action": "promote"}, [good], "text"):  # fmt: skip
        with pytest.raises(ForgedLink):
            verify(SECRET, signed(bad), NOW)
    with pytest.raises(ForgedLink):
        verify(b"", signed(good), NOW)  # no secret configured: nothing verifies


def test_expiry_is_exclusive_and_too_long_a_life_is_refused():
    token = mint(SECRET, RELEASE, "approve", "b", NOW + 60)
    assert verify(SECRET, token, NOW + 59)
    with pytest.raises(ExpiredLink) as caught:
        verify(SECRET, token, NOW + 60)
    assert caught.value.status == 410
    lifetime = int(signed_links.MAX_TOKEN_LIFETIME.total_seconds())
    assert verify(SECRET, mint(SECRET, RELEASE, "approve", "b", NOW + lifetime), NOW)
    with pytest.raises(ForgedLink):
        verify(SECRET, mint(SECRET, RELEASE, "approve", "b", NOW + lifetime + 1), NOW)


def test_another_release_or_action_is_a_wrong_link():
    token = mint(SECRET, RELEASE, "approve", "b", NOW + 60)
    with pytest.raises(WrongLink) as caught:
        verify(SECRET, token, NOW, "rel-other", "approve")
    assert caught.value.status == 403
    with pytest.raises(WrongLink):
        verify(SECRET, token, NOW, RELEASE, "decline")


def test_mint_refuses_what_could_never_verify():
    for args in ((SECRET, RELEASE, "promote", "b"), (b"", RELEASE, "approve", "b"), (SECRET, "", "approve", "b"),
                 (SECRET, RELEASE, "approve", "  ")):  # fmt: skip
        with pytest.raises(ValueError):
            mint(*args, NOW + 60)


def test_a_link_is_spent_once_even_by_racing_requests():
    store = InMemoryReleaseStore()
    link = verify(SECRET, mint(SECRET, RELEASE, "approve", "b", NOW + 60), NOW)
    results: list[str] = []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        try:
            spend(store, link)
            results.append("spent")
        except SpentLink as exc:
            results.append(f"refused {exc.status}")

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused 409"] * 7 + ["spent"]
    assert store.nonces == {link.nonce: "2026-11-18T11:07:40+00:00"}  # kept until the link expires


def test_the_link_secret_is_the_local_key_locally_and_mlops_link_secret_on_azure(tmp_path: Path):
    home = tmp_path / "home"
    local = Settings.from_env({"MLOPS_PLATFORM": "local", "MLOPS_HOME": str(home)})
    assert link_secret(local) == local_signature.load_or_create_key(home)
    azure = Settings.from_env({"MLOPS_PLATFORM": "azure", "MLOPS_LINK_SECRET": " s3cret "})
    assert link_secret(azure) == b"s3cret"
    unresolved = "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/mlops-link-secret/)"
    assert link_secret(Settings.from_env({"MLOPS_PLATFORM": "azure", "MLOPS_LINK_SECRET": unresolved})) == b""
    assert link_secret(Settings.from_env({"MLOPS_PLATFORM": "azure"})) == b""


def test_a_damaged_local_key_is_refused_not_used(tmp_path):
    from functions.entrypoints.identity import local_signature

    local_signature.key_path(tmp_path).write_text("")  # an empty key would let anyone sign as anyone
    with pytest.raises(local_signature.BadSignature, match="damaged"):
        local_signature.load_or_create_key(tmp_path)
    fresh = tmp_path / "fresh"
    key = local_signature.load_or_create_key(fresh)
    assert len(key) == 64 and (local_signature.key_path(fresh).stat().st_mode & 0o777) == 0o600
