"""Measuring in a fresh interpreter: a probe script prints one JSON line of what it found."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def run_probe(code: str, timeout: float = 120) -> dict:
    """Run `code` with this interpreter in the project's folder; its last line of output, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
