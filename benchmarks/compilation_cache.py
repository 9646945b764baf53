"""What JAX's persistent compilation cache saves a command: the same short search with a cold and a warm cache.

Each round runs the real command, ``nas search`` (small CNN on digits, accuracy against stored size, a few quick
trials), in a fresh results directory with the baseline already cached, twice: first with an empty cache
directory (every function compiled), then again with the cache that first run filled (compiled functions read
back). Rounds alternate the two so that a drift of the machine falls on both. The figure is the ratio within
a round, ``warm_over_cold_ratio``; the seconds are the whole process, start-up included, as a user waits.
Nothing else heavy may run meanwhile.

Usage: python benchmarks/compilation_cache.py [--rounds 3]
Writes results/benchmarks/compilation_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from result_file import write_result  # noqa: E402

from nas.compile_cache import CACHE_VARIABLE  # noqa: E402
from nas.provenance import run_provenance  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "compilation_cache.json"
SEARCH = ["--trials", "4", "--epochs", "2", "--steps", "20", "--finetune-lr", "1e-3", "--no-progress"]
SEARCH += ["--objectives", "accuracy,stored_bytes"]


def search_seconds(results: Path, study: str, cache: Path) -> float:
    """Wall seconds of one ``nas search`` process using the compilation cache ``cache``."""
    command = [sys.executable, "-m", "nas.cli", "search", "--study", study, "--results-dir", str(results), *SEARCH]
    env = {**os.environ, "PYTHONPATH": str(ROOT), CACHE_VARIABLE: str(cache)}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - start


def main() -> None:
    """Runs the rounds and writes the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="compilation-cache-") as folder:
        results = Path(folder) / "results"
        search_seconds(results, "warmup", Path(folder) / "warmup-cache")  # trains and caches the baseline
        for index in range(args.rounds):
            cache = Path(folder) / f"cache-{index}"
            cold = search_seconds(results, f"cold-{index}", cache)
            warm = search_seconds(results, f"warm-{index}", cache)
            rounds.append({"cold_seconds": round(cold, 2), "warm_seconds": round(warm, 2)})
            print(f"round {index}: cold {cold:.2f} s, warm {warm:.2f} s", file=sys.stderr)
    ratios = sorted(r["warm_seconds"] / r["cold_seconds"] for r in rounds)
    result = {
        "command": "nas search " + " ".join(SEARCH),
        "rounds": rounds,
        "warm_over_cold_ratio": round(ratios[len(ratios) // 2], 3),  # the median round
        "provenance": run_provenance(),
    }
    write_result(OUT, result)
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))


if __name__ == "__main__":
    main()
