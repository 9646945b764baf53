"""The fine-tuning learning rate of a model, chosen once by a short sweep on its trained baseline.

No one rate suits every model: on 8x8 digits, Adam at 2e-2 recovers the two-layer CNN from 50% channel
pruning best (0.94 against 0.84 at 1e-3), and takes ResNet-8's uniform int8 model from 0.983 to 0.415
(1e-3 keeps 0.983). So before a search the sweep fine-tunes two probe candidates at each rate of a grid, with
the study's steps and batch:
- uniform int8: the mild end, where fine-tuning must not harm a model that needs little;
- every prunable channel group at half its channels, int8: the harsh end, where it must recover.
Among the rates that keep the uniform int8 probe at or above its calibrated (post-training) accuracy, it keeps
the one with the best mean validation accuracy of the two probes (the smaller rate on a tie, as the safer one
from trained weights); where no rate does, the one that harms that probe least. A mean alone let the harsh
probe's gain buy a loss at the mild end: on ResNet-8 on shapes its choice (3e-3) took uniform int8 1.1 points
below its calibrated accuracy, this rule's (1e-3) 0.6 above (``benchmarks/families.py``, ``qat_minus_ptq_pts``).

The choice is cached beside the baseline (keyed by the fine-tuning settings), so workers and resumed runs
reuse it, and recorded on the study with its scores.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.checkpoint import atomic_write_bytes
from nas.compress.compression import build_compression
from nas.locks import exclusive
from nas.training.evaluate import evaluate
from nas.training.finetune import Trainer, finetune
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate, LayerPolicy

RATE_GRID = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
PROBE_KEEP = 0.5
RULE = "best mean among the rates that do not harm uniform int8"  # part of the cache key: a new rule resweeps


@dataclass(frozen=True, kw_only=True)
class RateChoice:
    """The learning rate fine-tuning uses, and where it came from."""

    learning_rate: float
    source: str  # "given" (the user's) or "swept" (chosen on the baseline)
    scores: dict[str, float]  # mean probe validation accuracy per swept rate (empty when given)
    int8_scores: dict[str, float] = field(default_factory=dict)  # the uniform int8 probe's, per swept rate
    int8_calibrated: float | None = None  # the uniform int8 probe calibrated only, without training

    @property
    def harmless_rates(self) -> list[str]:
        """The swept rates that kept uniform int8 at or above its calibrated accuracy."""
        floor = self.int8_calibrated
        return [rate for rate, score in self.int8_scores.items() if floor is not None and score >= floor]

    def describe(self) -> str:
        """One line for the console."""
        if self.source == "given":
            return f"fine-tuning learning rate {self.learning_rate:g} (given)"
        tried = ", ".join(f"{rate} {score:.3f}" for rate, score in self.scores.items())
        kept = "" if self.harmless_rates else "; no rate kept uniform int8 at its calibrated accuracy"
        return (
            f"fine-tuning learning rate {self.learning_rate:g}, chosen on the baseline (probe accuracy: {tried}{kept})"
        )


def probe_candidates(graph: ModelGraph) -> dict[str, Candidate]:
    """The sweep's probes: uniform int8, and every prunable group at ``PROBE_KEEP`` of its channels in int8."""
    uniform = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    pruned = LayerPolicy(sparsity=0.0, channel_keep=PROBE_KEEP, weight_bits=8, activation_bits=8)
    leaders = {graph.leader_of(group) for group in graph.prunable_groups}
    probes = {"int8": uniform}
    if leaders - {None}:
        probes["half_channels_int8"] = Candidate(
            policies=tuple((name, pruned if name in leaders else policy) for name, policy in uniform.policies)
        )
    return probes


def sweep_learning_rate(
    trainer: Trainer,
    graph: ModelGraph,
    params: dict[str, Any],
    data: tuple[Any, Any, np.ndarray, np.ndarray],
    *,
    seed: int,
    grid: tuple[float, ...] = RATE_GRID,
) -> RateChoice:
    """Fine-tunes each probe at each rate of ``grid`` and applies the module's rule; ``data`` is (x_train,
    the fine-tuning targets, x_val, y_val)."""
    x_train, targets, x_val, y_val = data
    probes = [build_compression(graph, params, candidate) for candidate in probe_candidates(graph).values()]

    def accuracy(compression: Any, **settings: Any) -> float:
        tuned, tuned_compression = finetune(trainer, params, compression, x_train, targets, seed=seed, **settings)
        return evaluate(trainer, tuned, tuned_compression, x_val, y_val).accuracy

    calibrated = accuracy(probes[0], steps=0)  # probes[0] is uniform int8
    scores: dict[str, float] = {}
    int8_scores: dict[str, float] = {}
    for rate in grid:
        accuracies = [accuracy(compression, learning_rate=rate) for compression in probes]
        scores[f"{rate:g}"], int8_scores[f"{rate:g}"] = float(np.mean(accuracies)), accuracies[0]
    harmless = [rate for rate in grid if int8_scores[f"{rate:g}"] >= calibrated]
    # max over (score, -rate): the best score, and on a tie the smaller rate
    pool = harmless or [max(grid, key=lambda rate: (round(int8_scores[f"{rate:g}"], 9), -rate))]
    best = max(pool, key=lambda rate: (round(scores[f"{rate:g}"], 9), -rate))
    return RateChoice(
        learning_rate=best, source="swept", scores=scores, int8_scores=int8_scores, int8_calibrated=calibrated
    )


def chosen_learning_rate(
    trainer: Trainer,
    graph: ModelGraph,
    params: dict[str, Any],
    data: tuple[Any, Any, np.ndarray, np.ndarray],
    *,
    cache_dir: Path,
    seed: int,
) -> RateChoice:
    """The config's rate when it sets one, else the sweep's choice, cached in ``cache_dir`` (the baseline's)."""
    config = trainer.config
    if config.learning_rate is not None:
        return RateChoice(learning_rate=config.learning_rate, source="given", scores={})
    identity = json.dumps({"finetune": asdict(config), "grid": RATE_GRID, "seed": seed, "rule": RULE}, sort_keys=True)
    path = cache_dir / f"learning_rate-{hashlib.sha256(identity.encode()).hexdigest()[:12]}.json"
    # Workers that race here sweep once: the first holds the lock, the others then read its file.
    with exclusive(path.with_suffix(".lock")):
        cached = _read(path)
        if cached is not None:
            return cached
        choice = sweep_learning_rate(trainer, graph, params, data, seed=seed)
        atomic_write_bytes(path, lambda handle: handle.write(json.dumps(asdict(choice), indent=1).encode()))
        return choice


def _read(path: Path) -> RateChoice | None:
    try:
        return RateChoice(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):  # absent or damaged: swept again
        return None
