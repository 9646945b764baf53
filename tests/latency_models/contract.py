"""The contract every cost model passes (in the manner of optuna's sampler test kits).

``check_cost_model`` runs the shared checks on a model and a set of candidates; each model's test module
calls it with real tables. The checks: every figure is finite and non-negative, a known provenance, and the
same on every call; latency does not fall when a layer keeps more channels at a fixed precision (where the
model's data says so: a fitted figure is monotone by construction, measured entries within the noise).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from latency_models.cost import COST_FIGURES, PROVENANCES, CostModel
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate


def check_cost_model(model: CostModel, graph: ModelGraph, candidates: list[Candidate]) -> None:
    """Asserts the contract for ``model`` on ``candidates`` of ``graph``."""
    for candidate in candidates:
        first, again = model.cost(graph, candidate), model.cost(graph, candidate)
        assert first == again, "a cost model must be deterministic"
        for name in COST_FIGURES:
            figure = getattr(first, name)
            assert figure.value >= 0 and figure.provenance in PROVENANCES, (name, figure)
        assert first.device == model.device.name
        assert abs(sum(part.latency_ms.value for part in first.layers) - first.latency_ms.value) < 1e-9


def check_monotone_in_channels(
    model: CostModel, graph: ModelGraph, candidate: Candidate, keeps: list[float], tolerance: float
) -> list[float]:
    """Latencies of ``candidate`` with every prunable group at each keep ratio (ascending); asserts they do
    not fall by more than ``tolerance`` (relative) from one ratio to the next. Returns the latencies."""
    latencies = []
    for keep in sorted(keeps):
        policies = tuple((name, replace(policy, channel_keep=keep)) for name, policy in candidate.policies)
        latencies.append(model.cost(graph, Candidate(policies=policies)).latency_ms.value)
    for smaller, larger in itertools.pairwise(latencies):
        assert larger >= smaller * (1 - tolerance), latencies
    return latencies
