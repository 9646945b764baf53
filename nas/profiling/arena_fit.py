"""The TFLite Micro arena predictor's constants: what each kind of op keeps in the arena's tail besides its
per-channel arrays (its kernel's op data and its parsed options), and the allocator's fixed structs.

Everything else of the arena is computed (``latency_models.runtimes.tflite_micro.arena``); these sizes are the
kernels' struct sizes, the same for every model, so they are fitted by least squares on the tails TFLite
Micro's recording allocator reports for exports of one-layer models and of random candidates of every family at
two input sizes, in a microcontroller's space (seeded apart from ``benchmarks/tflm_memory.py``'s candidates,
which test it). Written with its residuals to ``latency_models/tflite_micro_arena.json``.

Usage: python -m nas.profiling.arena_fit [--per-shape 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import optuna
from tqdm import tqdm

from latency_models.device import load_device
from latency_models.files import atomic_write_text
from latency_models.runtimes import runnable_precisions
from latency_models.runtimes.tflite_micro import recorded_arena
from latency_models.runtimes.tflite_micro.arena import CONSTANTS_PATH, FEATURES, tail_features, tail_residual
from latency_models.runtimes.tflite_micro.arena_graph import candidate_arena_graph
from nas.profiling.flash_fit import export_random
from nas.profiling.micro import small_layer
from nas.provenance import git_commit
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import load_model_spec

FAMILIES = ("cnn", "dscnn", "mlp", "resnet8", "mobilenet_v1")
INPUT_SHAPES = ((8, 8, 1), (12, 12, 1))
DEVICE = "stm32h7"
SEED = 1011  # the benchmark's candidates are seeded from 11


def sample_candidates(per_shape: int, seed: int) -> list[tuple[ModelGraph, Candidate]]:
    """One-layer models of every conv, depthwise conv and dense precision the device runs (so the fixed
    structs are not confused with the ops every family has), then a uniform float candidate and random ones
    of every family at every input size, in the device's space."""
    device = load_device(DEVICE)
    pairs = []
    for op, precisions in runnable_precisions(device).items():
        if op in ("conv", "dwconv", "dense"):
            pairs += [(micro.graph, micro.candidate) for micro in (small_layer(op, *bits) for bits in precisions)]
    for index, family in enumerate(FAMILIES):
        spec = load_model_spec(family)
        space = SearchSpace().with_model_rules(spec.rules).restricted_to(runnable_precisions(device)).without_sparsity()
        for shape in INPUT_SHAPES:
            graph = analyze(spec, shape, 10)
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + index * 10 + shape[0]))
            pairs.append((graph, Candidate.uniform(graph, weight_bits=32, activation_bits=32)))
            pairs += [(graph, suggest_candidate(study.ask(), graph, space)) for _ in range(per_shape)]
    return pairs


def fit_constants(per_shape: int = 5, seed: int = SEED, show_progress: bool = True) -> dict[str, Any]:
    """Exports the sample, fits the constants to the recorded tails, writes the JSON; returns what was written."""
    start = time.perf_counter()
    rows, residuals = [], []
    for graph, candidate in tqdm(
        sample_candidates(per_shape, seed), desc="exports", file=sys.stderr, disable=not show_progress
    ):
        arena_graph = candidate_arena_graph(graph, candidate)
        recorded = recorded_arena(export_random(graph, candidate))
        rows.append(tail_features(arena_graph))
        residuals.append(tail_residual(arena_graph, recorded["tail_bytes"]))
    x, y = np.array(rows, float), np.array(residuals, float)
    coefficients = np.linalg.lstsq(x, y, rcond=None)[0]
    error = x @ coefficients - y
    result = {
        "features": list(FEATURES),
        "coefficients": [round(float(c), 3) for c in coefficients],
        "exports": len(y),
        "mean_abs_error_bytes": round(float(np.abs(error).mean()), 1),
        "max_abs_error_bytes": round(float(np.abs(error).max()), 1),
        "seconds": round(time.perf_counter() - start, 1),
        "method": (
            "least squares of TFLite Micro's recorded arena tail less its computed terms, on exports of one-layer "
            f"conv, depthwise conv and dense models at every precision {DEVICE} runs and of random candidates "
            f"of {', '.join(FAMILIES)} at {', '.join('x'.join(map(str, s)) for s in INPUT_SHAPES)} in "
            f"{DEVICE}'s space (seed {seed}); an op kind no export had keeps 0"
        ),
        **git_commit(),
    }
    atomic_write_text(CONSTANTS_PATH, json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-shape", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(json.dumps({k: v for k, v in fit_constants(args.per_shape).items() if k != "method"}, indent=1))


if __name__ == "__main__":
    main()
