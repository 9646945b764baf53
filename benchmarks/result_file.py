"""Where a benchmark's figures go: one JSON file under results/benchmarks/, written whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(path: Path, result: Any) -> None:
    """Writes ``result`` as indented JSON to ``path`` (its folder made if needed), ending in a newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
