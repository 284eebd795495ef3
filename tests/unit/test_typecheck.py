"""House rule: the shared protocol and the agent pass `mypy --strict` (the
files and overrides are configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("mypy", path=str(Path(sys.executable).parent)) is None
                    and subprocess.run([sys.executable, "-c", "import mypy"],
                                       capture_output=True).returncode != 0,
                    reason="needs mypy (pip install mypy)")
def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
