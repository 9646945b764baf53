"""Vela in the search for an Ethos-U55: what a compile costs a trial, what searching for the NPU gains over
searching for the host, the NPU's channel granule, and what snapping channel pruning to it gains.

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
   saves against the full block, ``inside_granule_worst_ratio`` how much more a count short of a block can cost;
   ``granule_channels_u65`` the same block width for ``ethos_u65_256`` (the profiles' ``channel_granule``).
4. ``snap``: two U55 searches of the same model, data, seed and trial count, one whose channel keep ratios snap
   to the granule (the default), one not (``--no-snap-channels``). ``snap_latency_speedup_at_matched_accuracy``
   is the median, over the unsnapped front, of (its latency) / (the fastest snapped front member at least as
   accurate), ``unsnapped_latency_speedup_at_matched_accuracy`` the reverse; ``*_front_dominated_share`` how
   much of each front the other dominates; ``unsnapped_off_granule_share`` the unsnapped trials that keep a
   count short of a block in some group. ``rounded_up_latency_ratio``: each such trial exported again with its
   counts rounded up to whole blocks (its own fine-tuned weights and ranges, so only the channel counts
   change), its Vela latency over the trial's: what the channels a block computes anyway would cost to keep.

Latency figures are Vela's estimates (never measurements); the host search's own figures are the host tables'.
Nothing else heavy may run meanwhile (the compile seconds are wall time). The part ``search`` runs the U55 search
as ``nas search`` does, so its figures measured before snapping (provenance: commit 4257d40) were unsnapped.

Usage: python benchmarks/vela_devices.py [--trials 30] [--part search|granule|snap|all ...]
Writes results/benchmarks/vela_devices.json (a part updates only its own keys), vela_devices.png (part search)
and vela_devices_snap.png (part snap).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from result_file import write_result  # noqa: E402

from latency_models.device import load_device  # noqa: E402
from latency_models.keys import LayerKey, boundaries  # noqa: E402
from latency_models.registry import cost_model  # noqa: E402
from latency_models.runtimes.vela import Vela  # noqa: E402
from latency_models.runtimes.vela.compiler import compile_model  # noqa: E402
from latency_models.runtimes.vela.config import vela_config  # noqa: E402
from nas.analysis.pareto import front_frame, trials_frame  # noqa: E402
from nas.compress.compression import build_compression, with_ranges  # noqa: E402
from nas.config import SearchConfig  # noqa: E402
from nas.profiling.micro import export_micro, single  # noqa: E402
from nas.provenance import run_provenance  # noqa: E402
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate  # noqa: E402
from nas.search.context import resolve_problem  # noqa: E402
from nas.search.record import TrialRecord  # noqa: E402
from nas.search.saved import SavedStudy  # noqa: E402
from nas.search.study import run_search  # noqa: E402
from search_spaces.graph import ModelGraph  # noqa: E402
from search_spaces.space import Candidate  # noqa: E402
from search_spaces.techniques import technique_of_param  # noqa: E402
from search_spaces.techniques.channel_keep import kept_count, snapped_ratios  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "vela_devices.json"
U55 = "ethos_u55_128"
U65 = "ethos_u65_256"
OBJECTIVES = ("accuracy", "latency_ms")
PARTS = ("search", "granule", "snap")
KEEP = technique_of_param("x.keep")


def search(device: str, trials: int, results: Path, *, snap: bool = True) -> SavedStudy:
    """One study of the default model on digits for ``device`` (channel keep ratios snapped to its granule
    unless ``snap`` is False), named after the device (``-unsnapped`` appended when not snapped)."""
    config = SearchConfig(device=device, objectives=OBJECTIVES, snap_channels=snap)
    name = device if snap else f"{device}-unsnapped"
    run_search(resolve_problem(config), name=name, trials=trials, results_dir=results, show_progress=False)
    return SavedStudy.open(name, results)


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


def granule(out_channels: range, device: str = U55) -> list[dict]:
    """Vela's cycles on ``device`` for a 3x3 int8 conv on 8x8x32 with each output channel count."""
    config, rows = vela_config(load_device(device)), []
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


def search_part(trials: int, results: Path) -> tuple[dict, list[dict]]:
    """Parts 1 and 2: the compile seconds and the U55 front against the host study's; also every host trial
    costed on the U55 (for the plot)."""
    u55 = search(U55, trials, results)
    host = search("host", trials, results)
    compiled = compile_seconds(u55)
    u55_front = front_points(u55)
    host_front = on_u55(host, [number for number, _, _ in front_points(host)])
    complete = host.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    host_all = on_u55(host, [trial.number for trial in complete])
    # The host front's members the NPU runs; where it runs none, the best the host study offers the NPU: the
    # front of its trials the NPU runs.
    compared = [r for r in host_front if r["u55_ms"] is not None] or front_of(host_all)
    speedups = matched_speedups(compared, u55_front)
    figures = {
        "trials_per_search": trials,
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
    }
    return figures, host_all


def granule_part() -> dict:
    """Part 3: the U55's staircase and block width, and the U65's block width."""
    rows = granule(range(1, 33))
    width = step_width(rows)
    return {
        "granule_channels": width,
        **(inside_granule(rows, width) if width else {}),
        "granule": rows,
        "granule_channels_u65": step_width(granule(range(1, 33), U65)),
    }


def kept_counts(graph: ModelGraph, candidate: Candidate) -> dict[str, tuple[int, int]]:
    """Per channel group (by its leader): (its size, the channels ``candidate`` keeps)."""
    return {
        leader.name: (leader.out_channels, kept_count(leader.out_channels, candidate.policy(leader.name).channel_keep))
        for leader in KEEP.knob_layers(graph)
    }


def off_granule(graph: ModelGraph, candidate: Candidate, granule_width: int) -> bool:
    """Whether ``candidate`` keeps a count short of a whole block in some group (a full group is not short)."""
    return any(kept % granule_width and kept != size for size, kept in kept_counts(graph, candidate).values())


def rounded_up(graph: ModelGraph, candidate: Candidate, granule_width: int) -> Candidate:
    """``candidate`` with every group's kept count rounded up to whole blocks, as the snapped space rounds it."""
    keeps: dict[str, float] = {}
    for leader in KEEP.knob_layers(graph):
        (ratio,) = snapped_ratios((candidate.policy(leader.name).channel_keep,), leader.out_channels, granule_width)
        keeps |= {target: ratio for target in KEEP.targets(graph, leader)}
    return Candidate(
        policies=tuple(
            (name, replace(policy, channel_keep=keeps.get(name, policy.channel_keep)))
            for name, policy in candidate.policies
        )
    )


def u55_latency_ms(saved: SavedStudy, number: int, candidate: Candidate) -> float:
    """Vela's latency (with the profile's CPU side) of trial ``number``'s fine-tuned weights exported as
    ``candidate``: its own channel counts, or others (masks from the same weights, the trial's ranges)."""
    problem, vela, model = saved.problem(), Vela(), cost_model(U55)
    params, compression = saved.trial_weights(number)
    masks = build_compression(problem.graph, params, candidate, channel_norm=saved.config.channel_norm)
    calibration = problem.dataset.x_train[:CALIBRATION_EXAMPLES]
    content = export_candidate(
        problem.graph, params, with_ranges(masks, compression["ranges"]), candidate, calibration
    ).content
    cpu_side = model.parts_of_keys([], vela.cpu_conversions(boundaries(problem.graph, candidate)))
    return vela.file_cost(content, model.device, cpu_side=cpu_side).latency_ms.value


def dominated_share(front: list[tuple[int, float, float]], other: list[tuple[int, float, float]]) -> float:
    """The share of ``front``'s members some member of ``other`` dominates (as accurate and faster, or more
    accurate and as fast)."""
    beaten = [
        any(a >= accuracy and ms <= latency and (a, ms) != (accuracy, latency) for _, a, ms in other)
        for _, accuracy, latency in front
    ]
    return round(sum(beaten) / len(beaten), 3)


def snap_part(trials: int, results: Path) -> dict:
    """Part 4: the U55 searched with and without snapping channel counts to its granule."""
    width = load_device(U55).channel_granule
    snapped, unsnapped = search(U55, trials, results), search(U55, trials, results, snap=False)
    fronts = {"snapped": front_points(snapped), "unsnapped": front_points(unsnapped)}
    shares, ratios = {}, []
    for label, saved in (("snapped", snapped), ("unsnapped", unsnapped)):
        graph = saved.problem().graph
        complete = saved.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        candidates = {t.number: Candidate.from_dict(t.user_attrs["candidate"]) for t in complete}
        off = [number for number, candidate in candidates.items() if off_granule(graph, candidate, width)]
        front = {number for number, _, _ in fronts[label]}
        shares[f"{label}_off_granule_share"] = round(len(off) / len(candidates), 3)
        shares[f"{label}_front_off_granule_share"] = round(len(front & set(off)) / len(front), 3)
        for number in off if label == "unsnapped" else ():
            own = saved.study.trials[number].values[1]
            ratios.append(u55_latency_ms(saved, number, rounded_up(graph, candidates[number], width)) / own)
    as_rows = {label: [{"accuracy": a, "u55_ms": ms} for _, a, ms in front] for label, front in fronts.items()}
    snap_speedups = matched_speedups(as_rows["unsnapped"], fronts["snapped"])
    unsnapped_speedups = matched_speedups(as_rows["snapped"], fronts["unsnapped"])
    return {
        "snap_trials_per_search": trials,
        "snap_granule_channels": width,
        "snap_latency_speedup_at_matched_accuracy": _median(snap_speedups),
        "snap_speedups": [round(s, 3) for s in snap_speedups],
        "unsnapped_latency_speedup_at_matched_accuracy": _median(unsnapped_speedups),
        "unsnapped_speedups": [round(s, 3) for s in unsnapped_speedups],
        "unsnapped_front_dominated_share": dominated_share(fronts["unsnapped"], fronts["snapped"]),
        "snapped_front_dominated_share": dominated_share(fronts["snapped"], fronts["unsnapped"]),
        "snapped_best_accuracy": max(a for _, a, _ in fronts["snapped"]),
        "unsnapped_best_accuracy": max(a for _, a, _ in fronts["unsnapped"]),
        "snapped_fastest_ms": min(ms for _, _, ms in fronts["snapped"]),
        "unsnapped_fastest_ms": min(ms for _, _, ms in fronts["unsnapped"]),
        **shares,
        "rounded_up_latency_ratio": _median(ratios),
        "rounded_up_latency_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None,
        "rounded_up_trials": len(ratios),
        **{
            f"{label}_front": [{"trial": n, "accuracy": a, "latency_ms": ms} for n, a, ms in front]
            for label, front in fronts.items()
        },
    }


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def plot_snap(result: dict, path: Path) -> None:
    """The U55 front searched with channel counts snapped to the granule against the one searched without."""
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, marker in (("snapped", "o-"), ("unsnapped", "s--")):
        front = result[f"{label}_front"]
        axes.plot([p["latency_ms"] * 1000 for p in front], [p["accuracy"] for p in front], marker, label=label)
    axes.set_xlabel("latency on ethos_u55_128 (us, Vela's estimate + analytic CPU side)")
    axes.set_ylabel("validation accuracy")
    axes.set_title(f"channel keep snapped to blocks of {result['snap_granule_channels']} or not")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    """Runs the chosen parts and merges their keys into the JSON (the other parts' keys are kept)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--part", choices=(*PARTS, "all"), nargs="+", default=["all"])
    args = parser.parse_args()
    # Several parts in one run share one provenance, taken before the first writes (a clean tree stays clean).
    parts = PARTS if "all" in args.part else tuple(args.part)
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    provenance = run_provenance()
    host_all = None
    with tempfile.TemporaryDirectory(prefix="vela-devices-") as folder:
        if "search" in parts:
            figures, host_all = search_part(args.trials, Path(folder))
            result |= figures | {"provenance": provenance}
        if "granule" in parts:
            result |= granule_part() | {"granule_provenance": provenance}
        if "snap" in parts:
            result |= snap_part(args.trials, Path(folder)) | {"snap_provenance": provenance}
    write_result(OUT, result)
    if host_all is not None:
        u55_front = [(p["trial"], p["accuracy"], p["latency_ms"]) for p in result["u55_front"]]
        plot(u55_front, host_all, result["granule"], OUT.with_suffix(".png"))
    if "snap" in parts:
        plot_snap(result, OUT.with_name("vela_devices_snap.png"))
    hidden = {"provenance", "granule", "host_front_on_u55", "host_compared_on_u55", "u55_front"}
    hidden |= {"granule_provenance", "snap_provenance", "snapped_front", "unsnapped_front"}
    print(json.dumps({k: v for k, v in result.items() if k not in hidden}, indent=1))


if __name__ == "__main__":
    main()
