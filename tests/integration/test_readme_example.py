"""The README's bring-your-own-model example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    """The python block after the ``<!-- api-example -->`` marker in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its API example"
    return match.group(1)


def test_the_readme_example_searches_exports_and_verifies(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "LayerNorm" in run.stdout and "float" in run.stdout  # the region that stays float is listed
    assert re.search(r"models/trial-\d+\.tflite verified", run.stdout), run.stdout
    assert (tmp_path / "results" / "my_net" / "study.db").exists()
