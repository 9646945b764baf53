"""The reference models: a fixed set of whole models that calibrate a device's table (``nas profile --calibrate``).

Seeded random candidates (mixed precisions and channel pruning) of every model family at two input sizes, plus
each family's uniform float and uniform int8 model at the smaller size. The set depends only on the code, so
the kit for another device can write the same models, and the seed differs from the held-out benchmark's.
Each is exported through the project's exporter (random weights: latency does not depend on values) and
timed whole.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import optuna
from tqdm import tqdm

from latency_models.calibration import Calibration, CalibrationPoint, fit_calibration
from latency_models.errors import CostModelError
from latency_models.layered import LayeredCostModel
from latency_models.runtimes import runtime_running
from latency_models.runtimes.litert.timing import TimingProtocol
from nas.profiling.flash_fit import export_random
from nas.provenance import git_commit
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import available_models, load_model_spec

REFERENCE_SEED = 4242  # the held-out benchmark uses 12345
SHAPES = ((8, 8, 1), (28, 28, 1))
RANDOM_PER_SHAPE = 2
PROTOCOL_ROUNDS = 20  # two thirds of the table's rounds: a calibration takes seconds
MAX_PLAUSIBLE_MS = 600_000.0  # ten minutes for one invoke of these models is a unit mistake, not a latency


@dataclass(frozen=True, kw_only=True)
class ReferenceModel:
    """One reference model: a name stable across machines, its graph and its candidate."""

    name: str
    graph: ModelGraph
    candidate: Candidate


def reference_models(families: Iterable[str] | None = None) -> list[ReferenceModel]:
    """The reference set, in a fixed order."""
    models = []
    for family in families or available_models():
        spec = load_model_spec(family)
        space = SearchSpace().with_model_rules(spec.rules).without_sparsity()
        for shape in SHAPES:
            graph = analyze(spec, shape, 10)
            tag = f"{family}@{shape[0]}"
            if shape == SHAPES[0]:
                models.append(ReferenceModel(name=f"{tag}/float", graph=graph, candidate=Candidate.uncompressed(graph)))
                int8 = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
                models.append(ReferenceModel(name=f"{tag}/int8", graph=graph, candidate=int8))
            sampler = optuna.samplers.RandomSampler(seed=REFERENCE_SEED + len(models))
            study = optuna.create_study(sampler=sampler)
            for index in range(RANDOM_PER_SHAPE):
                candidate = suggest_candidate(study.ask(), graph, space)
                models.append(ReferenceModel(name=f"{tag}/random{index}", graph=graph, candidate=candidate))
    return models


def reference_protocol(threads: int) -> TimingProtocol:
    """The timing protocol of calibration measurements."""
    return TimingProtocol(rounds=PROTOCOL_ROUNDS, threads=threads)


def measure_references(
    references: list[ReferenceModel], kernel_sets: tuple[str, ...], protocol: TimingProtocol, show_progress: bool
) -> dict[str, dict[str, float]]:
    """Median latency (ms) of every reference model whole, per kernel set: ``{kernels: {name: ms}}``, timed by
    the runtime of those kernel sets."""
    runtime = runtime_running(kernel_sets)
    measured: dict[str, dict[str, float]] = {kernels: {} for kernels in kernel_sets}
    bar = tqdm(references, desc="calibrate", unit="model", file=sys.stderr, disable=not show_progress)
    for reference in bar:
        content = export_random(reference.graph, reference.candidate)
        for kernels in kernel_sets:
            measured[kernels][reference.name] = runtime.time(content, kernel_set=kernels, protocol=protocol).median_ms
    return measured


def calibration_points(
    model: LayeredCostModel, references: list[ReferenceModel], measured_ms: dict[str, float]
) -> list[CalibrationPoint]:
    """Each measured reference model beside the table's uncalibrated prediction of it."""
    points = []
    for reference in references:
        if reference.name not in measured_ms:
            continue
        parts = model.raw_parts(reference.graph, reference.candidate)
        points.append(model.calibration_point(reference.name, parts, measured_ms[reference.name]))
    return points


def calibrate(model: LayeredCostModel, points: list[CalibrationPoint], source: str) -> Calibration:
    """The calibration of ``model`` from ``points``, with where the measurements came from."""
    device, kernels = model.device, model.kernel_set
    provenance = {
        "device": device.name,
        "kernel_set": kernels,
        "source": source,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **git_commit(),
    }
    return fit_calibration(points, basis=model.calibration_basis(device, kernels), provenance=provenance)


def read_reference_csv(path: Path, references: list[ReferenceModel], kernel_set: str) -> dict[str, float]:
    """Measured latencies of reference models from a CSV with columns ``model`` and ``median_ms``; every problem
    names the row and the fix. The kit runner's CSV also has ``role`` and ``kernel_set``: only its reference rows
    of ``kernel_set`` are read."""
    known = {reference.name for reference in references}
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CostModelError(f"cannot read {path} ({err}); pass the CSV the kit's runner wrote") from None
    if not rows or not {"model", "median_ms"} <= set(rows[0]):
        raise CostModelError(f"{path}: needs a header with columns model and median_ms (the kit's runner writes them)")
    measured: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        if row.get("role", "reference") != "reference" or row.get("kernel_set", kernel_set) != kernel_set:
            continue
        name = (row.get("model") or "").strip()
        if name not in known:
            raise CostModelError(f"{path}:{line}: {name!r} is not a reference model; measure the kit's models")
        if name in measured:
            raise CostModelError(f"{path}:{line}: {name!r} appears twice; keep one measurement per model")
        try:
            value = float(row.get("median_ms") or "nan")
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not 0 < value < MAX_PLAUSIBLE_MS:
            raise CostModelError(
                f"{path}:{line}: median_ms {row.get('median_ms')!r} of {name} is not a latency "
                f"(must be > 0 and < {MAX_PLAUSIBLE_MS:g} ms); measure it again"
            )
        measured[name] = value
    if not measured:
        raise CostModelError(f"{path} has no {kernel_set} reference model timings; pass the --kernel-set timed")
    return measured
