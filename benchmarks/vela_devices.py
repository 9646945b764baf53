"""Vela in the search for an Ethos-U55: what a compile costs a trial, what searching for the NPU gains over
searching for the host, and the NPU's channel granule.

1. ``vela_seconds_per_candidate``: the median wall time of one Vela compile (a process of its own, as a trial
   runs it) over the distinct files of the U55 search's trials, and its share of the trial's time.
2. Two searches of the same model, data, seed and trial count: one for ``ethos_u55_128`` (every trial costed by
   Vela), one for the host (costed by the host's tables). The host's trials are exported and costed on the U55
   as a U55 trial is. ``latency_speedup_at_matched_accuracy`` is the median, over the host front's members the
   NPU runs (where it runs none of them: over the front of the host trials it runs), of (their U55 latency) /
   (the U55 latency of the fastest member of the U55 front at least as accurate). A host candidate with float,
   int16 or int4 weights does not run on the NPU: ``host_front_unrunnable_share`` and
   ``host_trials_unrunnable_share`` count them.
3. ``granule``: Vela's cycles for one 3x3 int8 convolution on 8x8x32 inputs with 1 to 32 output channels. The
   NPU computes output channels in blocks, so cycles jump from block to block: ``granule_channels`` is the
   block width Vela's model shows, ``inside_granule_best_saving`` the most a channel count short of a block
   saves against the full block, ``inside_granule_worst_ratio`` how much more a count short of a block can cost.

Latency figures are Vela's estimates (never measurements); the host search's own figures are the host tables'.
Nothing else heavy may run meanwhile (the compile seconds are wall time).

Usage: python benchmarks/vela_devices.py [--trials 30]
Writes results/benchmarks/vela_devices.json and vela_devices.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latency_models.device import load_device  # noqa: E402
from latency_models.keys import LayerKey, boundaries  # noqa: E402
from latency_models.registry import cost_model  # noqa: E402
from latency_models.runtimes.vela import Vela  # noqa: E402
from latency_models.runtimes.vela.compiler import compile_model  # noqa: E402
from latency_models.runtimes.vela.config import vela_config  # noqa: E402
from nas.analysis.pareto import front_frame, trials_frame  # noqa: E402
from nas.config import SearchConfig  # noqa: E402
from nas.profiling.micro import export_micro, single  # noqa: E402
from nas.provenance import run_provenance  # noqa: E402
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate  # noqa: E402
from nas.search.context import resolve_problem  # noqa: E402
from nas.search.record import TrialRecord  # noqa: E402
from nas.search.saved import SavedStudy  # noqa: E402
from nas.search.study import run_search  # noqa: E402
from search_spaces.space import Candidate  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "vela_devices.json"
U55 = "ethos_u55_128"
OBJECTIVES = ("accuracy", "latency_ms")


def search(device: str, trials: int, results: Path) -> SavedStudy:
    """One study of the default model on digits for ``device``."""
    config = SearchConfig(device=device, objectives=OBJECTIVES)
    run_search(resolve_problem(config), name=device, trials=trials, results_dir=results, show_progress=False)
    return SavedStudy.open(device, results)


def exported(saved: SavedStudy, number: int) -> bytes:
    """A trial's ``.tflite``, exported as its trial and ``nas export`` export it."""
    problem = saved.problem()
    params, compression = saved.trial_weights(number)
    candidate = Candidate.from_dict(saved.study.trials[number].user_attrs["candidate"])
    calibration = problem.dataset.x_train[:CALIBRATION_EXAMPLES]
    return export_candidate(problem.graph, params, compression, candidate, calibration).content


def compile_seconds(saved: SavedStudy) -> dict[str, float | None]:
    """Wall seconds of one Vela compile per distinct trial file, and the share of trial time Vela took."""
    config = vela_config(load_device(U55))
    seconds, shares = [], []
    for trial in saved.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        start = time.perf_counter()
        compile_model(exported(saved, trial.number), config)
        seconds.append(time.perf_counter() - start)
        record = TrialRecord.of(trial)
        if record is not None and "toolchain" in record.seconds:
            shares.append(record.seconds["toolchain"] / sum(record.seconds.values()))
    return {
        "vela_seconds_per_candidate": round(float(np.median(seconds)), 3),
        "vela_seconds_max": round(float(np.max(seconds)), 3),
        "vela_share_of_trial_time": round(float(np.median(shares)), 3) if shares else None,
        "candidates_compiled": len(seconds),
    }


def front_points(saved: SavedStudy) -> list[tuple[int, float, float]]:
    """(trial, validation accuracy, latency ms) of the study's front, from its trial records."""
    front = front_frame(trials_frame(saved.study), OBJECTIVES)
    return [(int(row.number), float(row.accuracy), float(row.latency_ms)) for row in front.itertuples()]


def on_u55(host: SavedStudy, numbers: list[int]) -> list[dict]:
    """Host trials costed on the U55 as a U55 trial is (Vela for the NPU, the profile's analytic CPU side);
    ``u55_ms`` None where the U55 does not run a layer's precision."""
    vela, model = Vela(), cost_model(U55)
    graph, rows = host.problem().graph, []
    for number in numbers:
        trial = host.study.trials[number]
        candidate = Candidate.from_dict(trial.user_attrs["candidate"])
        row = {"trial": number, "accuracy": float(trial.values[0]), "host_ms": float(trial.values[1]), "u55_ms": None}
        unrunnable = model.device.unrunnable(graph, candidate)
        if unrunnable:
            rows.append({**row, "why": f"the U55 does not run {', '.join(unrunnable)}"})
            continue
        cpu_side = model.parts_of_keys([], vela.cpu_conversions(boundaries(graph, candidate)))
        cost = vela.file_cost(exported(host, number), model.device, cpu_side=cpu_side)
        rows.append({**row, "u55_ms": cost.latency_ms.value})
    return rows


def front_of(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both accuracy and U55 latency (runnable rows only)."""
    runnable = [r for r in rows if r["u55_ms"] is not None]
    return [
        r
        for r in runnable
        if not any(
            o["accuracy"] >= r["accuracy"]
            and o["u55_ms"] <= r["u55_ms"]
            and (o["accuracy"], o["u55_ms"]) != (r["accuracy"], r["u55_ms"])
            for o in runnable
        )
    ]


def matched_speedups(host_rows: list[dict], u55_front: list[tuple[int, float, float]]) -> list[float]:
    """Per runnable host front member: its U55 latency over the fastest U55 front member at least as accurate."""
    speedups = []
    for row in host_rows:
        if row["u55_ms"] is None:
            continue
        matching = [ms for _, accuracy, ms in u55_front if accuracy >= row["accuracy"]]
        if matching:
            speedups.append(row["u55_ms"] / min(matching))
    return speedups


def granule(out_channels: range) -> list[dict]:
    """Vela's cycles for a 3x3 int8 conv on 8x8x32 with each output channel count."""
    config, rows = vela_config(load_device(U55)), []
    for channels in out_channels:
        key = LayerKey(
            op="conv",
            height=8,
            width=8,
            in_channels=32,
            out_channels=channels,
            kernel=3,
            stride=1,
            act="relu",
            weight_bits=8,
            activation_bits=8,
        )
        report = compile_model(export_micro(single(key)), config)
        rows.append({"out_channels": channels, "npu_cycles": report.npu_cycles, "total_cycles": report.total_cycles})
    return rows


def step_width(rows: list[dict], jump: float = 0.15) -> int | None:
    """The most common distance between the channel counts at which the NPU's cycles jump (by more than
    ``jump``: the small rises inside a block are the output's own cost)."""
    rises = [b["out_channels"] for a, b in itertools.pairwise(rows) if b["npu_cycles"] > (1 + jump) * a["npu_cycles"]]
    gaps = [b - a for a, b in itertools.pairwise(rises)]
    return int(np.bincount(gaps).argmax()) if gaps else None


def inside_granule(rows: list[dict], width: int) -> dict[str, float]:
    """What pruning inside a block buys: each count's NPU cycles over those of the next multiple of ``width``."""
    cycles = {r["out_channels"]: r["npu_cycles"] for r in rows}
    ratios = [
        cycles[c] / cycles[-(-c // width) * width] for c in cycles if c % width and -(-c // width) * width in cycles
    ]
    return {
        "inside_granule_best_saving": round(1 - min(ratios), 3),  # the most a count short of a block saves
        "inside_granule_worst_ratio": round(max(ratios), 3),  # >1: fewer channels than the block costs more
    }


def plot(u55_front, host_rows, granule_rows, path: Path) -> None:
    """The U55 front against the host study's trials the U55 runs, and the granule's staircase."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot([p[2] * 1000 for p in u55_front], [p[1] for p in u55_front], "o-", label="searched for the U55")
    runnable = [r for r in host_rows if r["u55_ms"] is not None]
    left.plot(
        [r["u55_ms"] * 1000 for r in runnable], [r["accuracy"] for r in runnable], "s", label="host trials the U55 runs"
    )
    left.set_xlabel("latency on ethos_u55_128 (us, Vela's estimate + analytic CPU side)")
    left.set_ylabel("validation accuracy")
    left.legend()
    right.step([r["out_channels"] for r in granule_rows], [r["npu_cycles"] for r in granule_rows], where="post")
    right.set_xlabel("output channels (3x3 conv, 8x8x32 in, int8)")
    right.set_ylabel("NPU cycles (Vela)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    """Runs the three parts and writes the JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vela-devices-") as folder:
        results = Path(folder)
        u55 = search(U55, args.trials, results)
        host = search("host", args.trials, results)
        compiled = compile_seconds(u55)
        u55_front = front_points(u55)
        host_front = on_u55(host, [number for number, _, _ in front_points(host)])
        complete = host.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        host_all = on_u55(host, [trial.number for trial in complete])
    # The host front's members the NPU runs; where it runs none, the best the host study offers the NPU: the
    # front of its trials the NPU runs.
    compared = [r for r in host_front if r["u55_ms"] is not None] or front_of(host_all)
    speedups = matched_speedups(compared, u55_front)
    granule_rows = granule(range(1, 33))
    width = step_width(granule_rows)
    result = {
        "trials_per_search": args.trials,
        **compiled,
        "latency_speedup_at_matched_accuracy": round(float(np.median(speedups)), 3) if speedups else None,
        "speedups": [round(s, 3) for s in speedups],
        "host_front_unrunnable_share": round(sum(r["u55_ms"] is None for r in host_front) / len(host_front), 3),
        "host_trials_unrunnable_share": round(sum(r["u55_ms"] is None for r in host_all) / len(host_all), 3),
        "compared_with": "host front members the U55 runs"
        if any(r["u55_ms"] is not None for r in host_front)
        else "the front of the host study's trials the U55 runs (it runs no host front member)",
        "u55_front": [{"trial": n, "accuracy": a, "latency_ms": ms} for n, a, ms in u55_front],
        "host_front_on_u55": host_front,
        "host_compared_on_u55": compared,
        "granule_channels": width,
        **(inside_granule(granule_rows, width) if width else {}),
        "granule": granule_rows,
        "provenance": run_provenance(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    plot(u55_front, host_all, granule_rows, OUT.with_suffix(".png"))
    hidden = ("provenance", "granule", "host_front_on_u55", "host_compared_on_u55", "u55_front")
    shown = {k: v for k, v in result.items() if k not in hidden}
    print(json.dumps(shown, indent=1))


if __name__ == "__main__":
    main()
