"""The whole test suite's wall time, run after run, with its slowest tests.

Runs ``scripts/test.sh`` (lint, format check, mypy, pytest with ``--durations``) ``--runs`` times in a row in
this checkout and records each run's seconds (the whole script, and pytest's own), its failures, and the slowest
tests of the last run. Nothing
else may run on the machine meanwhile (the suite's figures are this machine's, 2 shared cores).

Usage: python benchmarks/test_suite.py [--runs 3] [--slowest 25]    Writes results/benchmarks/test_suite.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from result_file import write_result

from nas.provenance import run_provenance

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "test_suite.json"
DURATION = re.compile(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)$")
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected)")
PYTEST_SECONDS = re.compile(r" in (\d+\.\d+)s")


def one_run(slowest: int) -> dict:
    """One ``scripts/test.sh`` run: its seconds, the pytest counts and the slowest phases."""
    start = time.perf_counter()
    result = subprocess.run(
        ["bash", "scripts/test.sh", "-q", f"--durations={slowest}", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    lines = result.stdout.splitlines()
    counts = {kind: int(n) for line in lines[-3:] for n, kind in SUMMARY.findall(line)}
    durations = [
        {"seconds": float(m.group(1)), "phase": m.group(2), "test": m.group(3)}
        for m in (DURATION.match(line.strip()) for line in lines)
        if m
    ]
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    found = [m for m in (PYTEST_SECONDS.search(line) for line in lines[-3:]) if m]
    return {
        "seconds": round(seconds, 1),
        "pytest_seconds": float(found[-1].group(1)) if found else None,
        "exit_code": result.returncode,
        "failed_tests": failed,
        "failures": counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0),
        "counts": counts,
        "slowest": durations,
    }


def result_tail(run: dict) -> str:
    """What to say about a run that failed before pytest reported a test."""
    return f"exit code {run['exit_code']} with no failed test: a check before pytest failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slowest", type=int, default=25)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        runs.append(one_run(args.slowest))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "slowest"}), flush=True)
        if runs[-1]["exit_code"] != 0 and not runs[-1]["failed_tests"]:  # lint, format or mypy failed first
            print(result_tail(runs[-1]), flush=True)
    summary = {
        "seconds": [r["seconds"] for r in runs],
        "pytest_seconds": [r["pytest_seconds"] for r in runs],
        "runs": len(runs),
        "failures": [r["failures"] for r in runs],
        "failed_tests": [r["failed_tests"] for r in runs],
        "exit_codes": [r["exit_code"] for r in runs],
        "slowest": runs[-1]["slowest"],
        "provenance": run_provenance(),
    }
    write_result(OUT, summary)


if __name__ == "__main__":
    main()
