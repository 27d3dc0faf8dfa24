"""The page's tokens (functions/entrypoints/ui/sessions.py): one kind is never another, none outlives its kind."""

from __future__ import annotations

import pytest

from functions.entrypoints.identity import signed_links, tokens
from functions.entrypoints.ui import sessions
from tests.doubles.ports import InMemoryReleaseStore

KEY = b"k" * 32
NOW = 1_800_000_000


def test_a_token_of_one_kind_is_refused_as_every_other():
    login = sessions.mint_login(KEY, "bob@example.com", NOW)
    session = sessions.mint_session(KEY, "bob@example.com", NOW)
    form = sessions.mint_form(KEY, "bob@example.com", "rel-1", "approve", NOW)
    link = signed_links.mint(KEY, "rel-1", "approve", "bob@example.com", NOW + 3600)
    for token in (login, form, link):
        with pytest.raises(sessions.Refused):
            sessions.session_identity(KEY, token, NOW)
    for token in (login, session, link):
        with pytest.raises(sessions.Refused):
            sessions.check_form(KEY, token, NOW, "rel-1", "approve")
    for token in (session, form, link):
        with pytest.raises(sessions.Refused):
            sessions.use_login(KEY, token, NOW, InMemoryReleaseStore())
    for token in (login, session, form):
        with pytest.raises(signed_links.ForgedLink):
            signed_links.verify(KEY, token, NOW)


def test_a_token_claiming_more_life_than_its_kind_gives_is_refused():
    long_lived = tokens.seal(KEY, {"purpose": "session", "identity": "bob@example.com",
                                   "expires": NOW + 30 * 86400, "sid": "s"})  # fmt: skip
    with pytest.raises(sessions.Refused, match="longer life"):
        sessions.session_identity(KEY, long_lived, NOW)


def test_a_login_is_used_once_and_forms_are_bound_to_their_release_and_action():
    store = InMemoryReleaseStore()
    login = sessions.mint_login(KEY, "bob@example.com", NOW)
    assert sessions.use_login(KEY, login, NOW, store) == "bob@example.com"
    with pytest.raises(sessions.Refused) as spent:
        sessions.use_login(KEY, login, NOW, store)
    assert spent.value.status == 409
    form = sessions.mint_form(KEY, "bob@example.com", "rel-1", "approve", NOW)
    assert sessions.check_form(KEY, form, NOW, "rel-1", "approve").reader == "bob@example.com"
    for release_id, action in (("rel-2", "approve"), ("rel-1", "decline")):
        with pytest.raises(sessions.Refused) as wrong:
            sessions.check_form(KEY, form, NOW, release_id, action)
        assert wrong.value.status == 403


def test_the_cookie_is_http_only_strict_and_secure_over_https():
    assert sessions.session_cookie("t", secure=False) == (
        f"mlops_session=t; Path=/api/ui; Max-Age={sessions.SESSION_SECONDS}; HttpOnly; SameSite=Strict"
    )
    assert sessions.session_cookie("t", secure=True).endswith("; Secure")
