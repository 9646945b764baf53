"""``nas analyze``: where a model's accuracy and its device cost live, layer by layer.

Every knob of the search space (a layer's precision, a channel group's keep ratio, a layer's unstructured
sparsity when the space searches it) is moved alone, from the uncompressed model, to each of its values: the
validation accuracy lost (calibrated ranges, no fine-tuning; ``nas.search.allocation``) beside the device
latency it saves and the layer's share of the uncompressed model's latency. Candidates for removal are ranked
by impact to cost: latency saved per point of accuracy lost (a loss below one validation example counts as one
example), most worthwhile first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from nas.analysis.plots import save_figure
from nas.search.allocation import Knobs, candidate_of, knobs, measure_sensitivity
from nas.search.context import SearchContext
from nas.search.objective import device_cost
from search_spaces.techniques import TECHNIQUES

LABELLED = 8  # the best-ranked moves named on the plot
MARKERS = "os^Dv<>p"  # one per registered technique, in registry order


@dataclass(frozen=True, kw_only=True)
class Move:
    """One knob moved alone to one value: what it costs in accuracy and saves on the device."""

    knob: str
    value: str
    layer: str
    layer_latency_share: float
    accuracy_drop: float
    latency_saved_ms: float
    latency_saved_share: float
    saved_per_point: float  # latency share saved per percentage point of accuracy lost


def diagnose(ctx: SearchContext, knobs_: Knobs | None = None) -> list[Move]:
    """Every single-knob move of ``ctx``'s space, ranked by latency saved per accuracy lost."""
    knobs_ = knobs_ or knobs(ctx, every_technique=True)
    sensitivity = measure_sensitivity(ctx, knobs_)
    reference = knobs_.reference
    base = device_cost(ctx, candidate_of(ctx, reference))
    if base is None:
        raise ValueError("diagnostics need a device cost model (an objective or budget on a device figure)")
    total = base.latency_ms.value
    shares = {part.name: part.latency_ms.value / total for part in base.layers}
    floor = 1.0 / len(ctx.problem.dataset.y_val)
    moves = []
    for (knob, value), drop in sensitivity.items():
        if value == reference[knob]:
            continue
        cost = device_cost(ctx, candidate_of(ctx, {**reference, knob: value}))
        saved = total - (cost.latency_ms.value if cost is not None else total)
        layer = knob.rsplit(".", 1)[0]
        moves.append(
            Move(
                knob=knob,
                value=str(value),
                layer=layer,
                layer_latency_share=round(shares.get(layer, 0.0), 4),
                accuracy_drop=round(drop, 4),
                latency_saved_ms=saved,
                latency_saved_share=round(saved / total, 4),
                saved_per_point=round((saved / total) / (100 * max(drop, floor)), 4),
            )
        )
    return sorted(moves, key=lambda move: -move.saved_per_point)


def moves_frame(moves: list[Move]) -> pd.DataFrame:
    """The ranked moves as a table."""
    return pd.DataFrame([asdict(move) for move in moves])


def draw_moves(moves: list[Move], path: Path, title: str) -> None:
    """Accuracy lost against latency saved, one point per move, the best-ranked named."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    frame = moves_frame(moves)
    kinds = frame["knob"].str.rsplit(".", n=1).str[-1]
    for technique, marker in zip(TECHNIQUES, MARKERS, strict=False):
        chosen = frame[kinds == technique.param_suffix]
        if not chosen.empty:
            x, y = 100 * chosen["latency_saved_share"], 100 * chosen["accuracy_drop"]
            ax.scatter(x, y, marker=marker, label=technique.param_suffix)
    for move in moves[:LABELLED]:
        ax.annotate(
            f"{move.knob}={move.value}",
            (100 * move.latency_saved_share, 100 * move.accuracy_drop),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("latency saved (% of the uncompressed model's)")
    ax.set_ylabel("validation accuracy lost (points, no fine-tuning)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
