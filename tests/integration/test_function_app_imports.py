"""function_app.py imported in a fresh interpreter, as the worker imports it: fast, nothing heavy."""

from __future__ import annotations

import subprocess
import sys

from devhost.settings import REPO_ROOT


def test_importing_the_app_loads_no_heavy_library():
    code = (
        "import sys, function_app; "
        "heavy = [m for m in ('sklearn', 'pandas', 'scipy', 'azure.ai.ml', 'joblib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
