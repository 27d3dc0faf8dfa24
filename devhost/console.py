"""The one rich Console every `mlops` command prints through, so their output looks the same.

highlight=False: rich would otherwise colour numbers and paths it guesses at in release ids and URLs.
"""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
