"""The one HTTP readiness check: the health probe both platforms poll before they use a scoring server."""

from __future__ import annotations

DEFAULT_TIMEOUT_S = 2.0


def http_ok(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """True when ``GET url`` answers 200 (azmlinfsrv's ``GET /`` does once score.py's init() ran);
    False for any other status and for a request that fails (refused, timed out, no such host)."""
    import requests  # lazily: the Azure adapters keep it out of the app's start-up

    try:
        return requests.get(url, timeout=timeout_s).status_code == 200
    except requests.RequestException:
        return False
