"""Runs every hostile input of tests/hostile.py and writes what the tool did into the README's table.

Usage: python scripts/hostile_inputs_table.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import README_END, README_START, run_all, table  # noqa: E402


def main() -> None:
    warnings.simplefilter("ignore")
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    rendered = table(run_all())
    readme.write_text(f"{text[:start]}\n{rendered}\n{text[end:]}")
    print(rendered)


if __name__ == "__main__":
    main()
