"""The RAM a microcontroller study predicts, against the TFLite Micro arena its export needs, and parity.

Random candidates of several families (8x8 inputs, the STM32H7's space: what TFLite Micro runs), each exported
with random weights and fixed ranges (memory does not depend on the values), then:
- ``predicted_bytes``: the device's predicted RAM figure (``cost_model("stm32h7")``: TFLite Micro's arena as its
  allocator fills it, ``latency_models.runtimes.tflite_micro.arena``);
- ``previous_bytes``: the figure the search used before, LiteRT's layout rules (``latency_models.memory``);
- ``arena_bytes``: the smallest TFLite Micro arena that allocates and invokes the file (measured here);
- ``agrees_with_litert``: TFLite Micro's top-1 predictions on 64 inputs against LiteRT's builtin kernels on the
  same file (the reference kernels and LiteRT's compute the same integers, or the file differs).
Summary: ``ram_exact_share`` (predicted equals the arena), ``ram_within_10pct``, ``worst_under_bytes`` (the
most the prediction falls short of the arena: RAM a device would lack), ``worst_over_bytes``, ``mape``, and
``parity_share``; the same of the previous figure under ``previous``.

And the support table TFLite Micro is credited with (``TFLiteMicro.support``), checked against the real thing:
a one-layer model of every conv, depthwise conv and dense precision the exporter writes correctly, prepared in
TFLite Micro (``support``: whether it ran, what it said, whether the table agrees; ``support_agrees_share``).

Usage: python benchmarks/tflm_memory.py [--per-family 10]
Writes results/benchmarks/tflm_memory.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from latency_models.device import load_device
from latency_models.errors import ModelLoadError
from latency_models.memory import ram_bytes
from latency_models.registry import cost_model
from latency_models.runtimes import runnable_precisions, runtime_named
from nas.profiling.flash_fit import export_random
from nas.profiling.micro import export_micro, small_layer
from nas.provenance import run_provenance
from search_spaces.graph import analyze
from search_spaces.runtime_support import SUPPORT
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import load_model_spec

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "tflm_memory.json"
FAMILIES = ("cnn", "dscnn", "mlp", "resnet8", "mobilenet_v1")
DEVICE = "stm32h7"
SEED = 11


def candidates(per_family: int) -> list[tuple[str, Any, Candidate]]:
    """Uniform int8 and seeded random candidates of every family, in the device's space."""
    device = load_device(DEVICE)
    items: list[tuple[str, Any, Candidate]] = []
    for family in FAMILIES:
        spec = load_model_spec(family)
        graph = analyze(spec, (8, 8, 1), 10)
        space = SearchSpace().with_model_rules(spec.rules).restricted_to(runnable_precisions(device)).without_sparsity()
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED + len(items)))
        items.append((family, graph, Candidate.uniform(graph, weight_bits=8, activation_bits=8)))
        items += [(family, graph, suggest_candidate(study.ask(), graph, space)) for _ in range(per_family - 1)]
    return items


def row(family: str, graph: Any, candidate: Candidate, x: np.ndarray) -> dict[str, Any]:
    """One candidate: predicted RAM, the measured arena and parity with LiteRT."""
    content = export_random(graph, candidate)
    micro, litert = runtime_named("tflite_micro"), runtime_named("litert")
    predicted = cost_model(DEVICE).cost(graph, candidate).ram_bytes
    arena = micro.memory_plan(content).runtime_bytes
    agrees = bool(
        np.array_equal(
            micro.predict(content, x, kernel_set="reference"), litert.predict(content, x, kernel_set="builtin")
        )
    )
    return {
        "family": family,
        "candidate": candidate.to_dict(),
        "predicted_bytes": int(predicted.value),
        "predicted_provenance": predicted.provenance,
        "previous_bytes": ram_bytes(graph, candidate),
        "arena_bytes": arena,
        "agrees_with_litert": agrees,
    }


def support_rows() -> list[dict[str, Any]]:
    """Every layer precision the exporter writes correctly, as a one-layer model prepared in TFLite Micro."""
    micro = runtime_named("tflite_micro")
    rows = []
    for (op, weight_bits, activation_bits), support in sorted(SUPPORT.items()):
        if not support.runs or op not in ("conv", "dwconv", "dense"):
            continue
        try:
            micro.memory_plan(export_micro(small_layer(op, weight_bits, activation_bits)))
            runs, said = True, ""
        except ModelLoadError as err:
            runs, said = False, str(err)
        credited = micro.support(op, weight_bits, activation_bits).runs
        rows.append(
            {
                "op": op,
                "precision": [weight_bits, activation_bits],
                "runs": runs,
                "said": said,
                "table_agrees": runs == credited,
            }
        )
    return rows


def summary(rows: list[dict[str, Any]], key: str = "predicted_bytes") -> dict[str, Any]:
    """The figures of the module docstring, of the prediction ``key``."""
    predicted = np.array([r[key] for r in rows], float)
    arena = np.array([r["arena_bytes"] for r in rows], float)
    return {
        "models": len(rows),
        "ram_exact_share": round(float(np.mean(predicted == arena)), 3),
        "ram_within_10pct": round(float(np.mean(np.abs(predicted - arena) <= 0.1 * arena)), 3),
        "worst_under_bytes": int(max(0.0, float(np.max(arena - predicted)))),
        "worst_over_bytes": int(max(0.0, float(np.max(predicted - arena)))),
        "mape": round(float(np.mean(np.abs(predicted - arena) / arena)), 4),
        "parity_share": round(float(np.mean([r["agrees_with_litert"] for r in rows])), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=8)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x = np.random.default_rng(SEED).random((64, 8, 8, 1), np.float32)
    rows = []
    for family, graph, candidate in candidates(args.per_family):
        rows.append(row(family, graph, candidate, x))
        print(json.dumps({k: rows[-1][k] for k in ("family", "predicted_bytes", "arena_bytes", "agrees_with_litert")}))
    support = support_rows()
    result = {
        **summary(rows),
        "previous": {k: v for k, v in summary(rows, "previous_bytes").items() if k != "parity_share"},
        "support_agrees_share": round(float(np.mean([row["table_agrees"] for row in support])), 3),
        "device": DEVICE,
        "rows": rows,
        "support": support,
        "provenance": run_provenance(),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary(rows), indent=1))


if __name__ == "__main__":
    main()
