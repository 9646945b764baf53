"""The flatbuffer's graph overhead (file bytes beyond the stored constants), fitted on real exports.

The overhead is the graph structure: op and tensor tables, tensor names (the Flax module path of every
node), shapes and activation quantization parameters. It does not depend on the device, only on the exporter,
so one fit serves every device: least squares on exports of random candidates of every family at three input
sizes, with features per model: layers, precision boundaries, layers with integer activations, weight-only
layers, and the characters of the layer names. Written with its residuals to
``latency_models/flatbuffer_overhead.json``, read by ``latency_models.memory``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
import optuna
from tqdm import tqdm

from latency_models.files import atomic_write_text
from latency_models.memory import OVERHEAD_FEATURES, OVERHEAD_PATH, overhead_features
from latency_models.size import stored_bytes
from nas.compress.compression import build_compression
from nas.compress.models import quant_points
from nas.profiling.micro import random_params
from nas.provenance import git_commit
from nas.runtime.export import export_candidate
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import available_models, load_model_spec

INPUT_SHAPES = ((8, 8, 1), (28, 28, 1), (32, 32, 3))


def export_random(graph: ModelGraph, candidate: Candidate, seed: int = 0) -> bytes:
    """The ``.tflite`` of ``candidate`` with random weights and fixed ranges (sizes do not depend on values)."""
    params = random_params(graph, seed)
    ranges = {point: np.array([-4.0, 4.0], np.float32) for point in quant_points(graph)}
    compression = build_compression(graph, params, candidate, ranges=ranges)
    calibration = np.random.default_rng(seed).random((4, *graph.input_shape), np.float32)
    return export_candidate(graph, params, compression, candidate, calibration).content


def sample_candidates(per_shape: int, seed: int) -> list[tuple[ModelGraph, Candidate]]:
    """Uniform float, uniform int8 and random candidates of every family at every input size."""
    pairs = []
    for family in available_models():
        spec = load_model_spec(family)
        space = SearchSpace().with_model_rules(spec.rules)
        for shape in INPUT_SHAPES:
            graph = analyze(spec, shape, 10)
            pairs.append((graph, Candidate.uniform(graph, weight_bits=32, activation_bits=32)))
            pairs.append((graph, Candidate.uniform(graph, weight_bits=8, activation_bits=8)))
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
            pairs += [(graph, suggest_candidate(study.ask(), graph, space)) for _ in range(per_shape)]
    return pairs


def fit_overhead(per_shape: int = 6, seed: int = 0, show_progress: bool = True) -> dict[str, Any]:
    """Exports the sample, fits the overhead, writes the JSON; returns what was written."""
    start = time.perf_counter()
    rows, overheads = [], []
    for graph, candidate in tqdm(
        sample_candidates(per_shape, seed), desc="exports", file=sys.stderr, disable=not show_progress
    ):
        rows.append(overhead_features(graph, candidate))
        overheads.append(len(export_random(graph, candidate)) - stored_bytes(graph, candidate))
    x, y = np.array(rows, float), np.array(overheads, float)
    coefficients = np.linalg.lstsq(x, y, rcond=None)[0]
    residual = x @ coefficients - y
    result = {
        "features": list(OVERHEAD_FEATURES),
        "coefficients": [round(float(c), 3) for c in coefficients],
        "exports": len(y),
        "overhead_bytes_range": [int(y.min()), int(y.max())],
        "mean_abs_error_bytes": round(float(np.abs(residual).mean()), 1),
        "max_abs_error_bytes": round(float(np.abs(residual).max()), 1),
        "seconds": round(time.perf_counter() - start, 1),
        "method": "least squares on exports of random candidates of every family at 8x8x1, 28x28x1, 32x32x3",
        **git_commit(),
    }
    atomic_write_text(OVERHEAD_PATH, json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(json.dumps(fit_overhead(), indent=1))
