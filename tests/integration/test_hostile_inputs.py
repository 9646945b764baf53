"""Every hostile input gets a one-line error, exit code 2 and nothing written; the README's table is what the
tool does now (regenerate it with scripts/hostile_inputs_table.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import CASES, readme_table, run_all, table

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_every_hostile_input_is_refused_in_one_line_with_nothing_written():
    outcomes = run_all()
    bad = [(case.name, outcome) for case, outcome in outcomes if not outcome.ok]
    assert not bad, bad
    assert len(outcomes) == len(CASES)
    assert readme_table((ROOT / "README.md").read_text()) == table(outcomes)
