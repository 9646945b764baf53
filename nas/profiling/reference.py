"""The reference models: a fixed set of whole models that calibrate a device's table (``nas profile --calibrate``).

Seeded random candidates (mixed precisions and channel pruning) of every model family at two input sizes, plus
each family's uniform float and uniform int8 model at the smaller size. The set depends only on the code, so
the kit for another device can write the same models, and the seed differs from the held-out benchmark's.
Each is exported through the project's exporter (random weights: latency does not depend on values) and
timed whole.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass

import optuna
from tqdm import tqdm

from latency_models.calibration import Calibration, CalibrationPoint, fit_calibration
from latency_models.device import DeviceProfile
from latency_models.measured import MeasuredCostModel
from latency_models.table import LatencyTable
from latency_models.timing import TimingProtocol, time_invokes
from nas.profiling.flash_fit import export_random
from nas.provenance import git_commit
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import available_models, load_model_spec

REFERENCE_SEED = 4242  # the held-out benchmark uses 12345
SHAPES = ((8, 8, 1), (28, 28, 1))
RANDOM_PER_SHAPE = 2
PROTOCOL_ROUNDS = 20  # half the table's rounds: a calibration should take about a minute


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
    """Median latency (ms) of every reference model whole, per kernel set: ``{kernels: {name: ms}}``."""
    measured: dict[str, dict[str, float]] = {kernels: {} for kernels in kernel_sets}
    bar = tqdm(references, desc="calibrate", unit="model", file=sys.stderr, disable=not show_progress)
    for reference in bar:
        content = export_random(reference.graph, reference.candidate)
        for kernels in kernel_sets:
            measured[kernels][reference.name] = time_invokes(content, delegate=kernels, protocol=protocol).median_ms
    return measured


def calibration_points(
    model: MeasuredCostModel, references: list[ReferenceModel], measured_ms: dict[str, float]
) -> list[CalibrationPoint]:
    """Each measured reference model beside the table's uncalibrated prediction of it."""
    points = []
    for reference in references:
        if reference.name not in measured_ms:
            continue
        parts = model.raw_parts(reference.graph, reference.candidate)
        points.append(
            CalibrationPoint(
                name=reference.name,
                raw_ms=sum(part.latency_ms.value for part in parts),
                ops=len(parts) - 1,
                measured_ms=measured_ms[reference.name],
            )
        )
    return points


def calibrate(device: DeviceProfile, table: LatencyTable, points: list[CalibrationPoint], source: str) -> Calibration:
    """The calibration of ``table`` from ``points``, with where the measurements came from."""
    provenance = {"device": device.name, "kernel_set": table.kernel_set, "source": source, **git_commit()}
    return fit_calibration(points, table_date=str(table.provenance.get("date_utc", "")), provenance=provenance)
