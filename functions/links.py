"""Links to the app's own routes, for messages to people: one place that knows the URLs.

The entry layer's routes (function_app.py) and these builders agree (a test checks every link
against the app's routes). Signed links and the approval page extend this class; a link never
carries a credential (everyone in a channel would hold it).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

DEFAULT_BASE_URL = "http://127.0.0.1:7071"
API = "/api"


@dataclass(frozen=True)
class Links:
    """Implements functions.ports.LinkBuilder for the app served at ``base_url`` (MLOPS_PUBLIC_URL)."""

    base_url: str = DEFAULT_BASE_URL

    def release(self, release_id: str) -> str:
        return f"{self.base_url.rstrip('/')}{API}/releases/{quote(release_id, safe='')}"

    def page(self, release_id: str) -> str:
        return f"{self.ui()}/releases/{quote(release_id, safe='')}"

    def ui(self) -> str:
        return f"{self.base_url.rstrip('/')}{API}/ui"

    def approve(self, release_id: str) -> str:
        return f"{self.release(release_id)}/approve"

    def decline(self, release_id: str) -> str:
        # The route keeps the API's word "reject"; the act is a person's decline.
        return f"{self.release(release_id)}/reject"

    def approve_command(self, release_id: str) -> str:
        """How a person approves: the CLI signs as them; anything else POSTs the route with a proven identity
        (Easy Auth session, a signed link). Never a credential in the text: everyone reading it would hold it."""
        return f"mlops approve {release_id} (or POST {self.approve(release_id)} with your identity)"
