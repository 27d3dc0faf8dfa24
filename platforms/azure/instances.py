"""Host instances on Azure Functions: named by App Service's WEBSITE_INSTANCE_ID.

Whether another instance still runs cannot be read from inside the app (the platform recycles and
scales instances without telling the others), so ``alive`` answers None: a claim an instance held
when it went away is retried after the claimed-step timeout, as before instances were recorded.
"""

from __future__ import annotations

import os
import socket

# Set by App Service on every instance (not an app setting anyone configures).
INSTANCE_SETTING = "WEBSITE_INSTANCE_ID"


class AppServiceInstances:
    """Instances port: ``azure:<WEBSITE_INSTANCE_ID>`` (the host name where it is unset)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._current = f"azure:{env.get(INSTANCE_SETTING) or socket.gethostname()}"

    def current(self) -> str:
        return self._current

    def alive(self, instance: str) -> bool | None:
        return None
