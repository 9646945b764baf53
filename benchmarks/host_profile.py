"""The host profile: ``nas profile --device host`` timed, with its noise floor and size.

Measures this machine's latency tables (written to ``latency_models/devices/host.*.csv``, as the command does)
and records the profiler's wall time (target: under 15 minutes), the number of micro-models, the entries per
kernel set and the noise floor (the same micro-model timed twice).

Usage: python benchmarks/host_profile.py    Writes results/benchmarks/host_profile.json. Run it on a quiet machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from result_file import write_result

from nas.profiling.run import profile_and_save
from nas.provenance import run_provenance

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "host_profile.json"


def main() -> None:
    start = time.perf_counter()
    written = profile_and_save("host")
    seconds = time.perf_counter() - start
    provenance = written[0][1].provenance
    result = {
        "profile_seconds": round(seconds, 1),
        "profile_minutes_target": 15,
        "micro_models": provenance["micro_models"],
        "noise_floor_pct": provenance["noise_floor_pct"],
        "entries": {table.kernel_set: len(table.entries) for _, table in written},
        "tables": [str(path.relative_to(ROOT)) for path, _ in written],
        "protocol": provenance["protocol"],
        "provenance": run_provenance(),
    }
    write_result(OUT, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
