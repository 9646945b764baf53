"""Plots of a study. Data functions compute what is drawn (and are tested); drawing functions only draw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from latency_models.cost import headline
from nas.analysis.pareto import pareto_mask
from nas.checkpoint import atomic_write_bytes
from nas.objectives import ACCURACY, directions, term
from search_spaces.techniques import policy_fields, technique_of_field

LAYER_FIELDS = policy_fields()  # one heat map per field a registered technique sets


@dataclass(frozen=True, kw_only=True)
class ParetoPlotData:
    """Accuracy versus a cost term: every trial, the front (a staircase where it is non-dominated in this plane), and
    the uncompressed baseline."""

    x_label: str
    y_label: str
    trial_x: np.ndarray
    trial_y: np.ndarray
    trial_feasible: np.ndarray
    front_x: np.ndarray
    front_y: np.ndarray
    staircase: np.ndarray
    baseline_x: float
    baseline_y: float
    references: tuple[tuple[str, float, float], ...] = ()  # baselines of the study: (name, x, accuracy)


@dataclass(frozen=True, kw_only=True)
class LayerViewData:
    """Per-layer configuration of each front member: one matrix (members x layers) per policy field."""

    members: tuple[str, ...]
    layers: tuple[str, ...]
    values: dict[str, np.ndarray]


def pareto_plot_data(
    trials: pd.DataFrame,
    front: pd.DataFrame,
    cost: str,
    baseline: dict[str, float],
    references: Sequence[dict[str, object]] = (),
) -> ParetoPlotData:
    """Plot data for accuracy versus the cost term ``cost``, in its displayed units.

    With more than two objectives, a front member may be dominated in this plane; the staircase joins only
    the members that are non-dominated in it, and every member is still drawn.
    """
    cost_term, accuracy = term(cost), term(ACCURACY)
    done = trials[trials["state"] == "COMPLETE"]
    order = np.argsort(front[cost].to_numpy(float), kind="stable")
    front_x = front[cost].to_numpy(float)[order]
    front_y = front["accuracy"].to_numpy(float)[order]
    plane = pareto_mask(np.column_stack([front_y, front_x]), directions((ACCURACY, cost)))
    provenance = _provenance(done, cost) or cost_term.provenance
    return ParetoPlotData(
        x_label=f"{cost_term.axis_label}, {provenance}",
        y_label=accuracy.axis_label,
        trial_x=done[cost].to_numpy(float) * cost_term.scale,
        trial_y=done["accuracy"].to_numpy(float),
        trial_feasible=done["feasible"].to_numpy(bool),
        front_x=front_x * cost_term.scale,
        front_y=front_y,
        staircase=plane,
        baseline_x=cost_term.display(float(baseline[cost_term.metric]))
        if cost_term.metric in baseline
        else float("nan"),
        baseline_y=float(baseline[accuracy.metric]),
        references=tuple(_reference(point, cost_term.metric, cost_term.scale) for point in references),
    )


def _reference(point: dict[str, object], metric: str, scale: float) -> tuple[str, float, float]:
    """A baseline point's name, cost (displayed units) and validation accuracy (NaN where it has none)."""
    metrics = point.get("metrics") or {}
    assert isinstance(metrics, dict)
    value, accuracy = metrics.get(metric), metrics.get("val_accuracy")
    x = float(value) * scale if value is not None else float("nan")
    return str(point["name"]), x, float(accuracy) if accuracy is not None else float("nan")


def _provenance(trials: pd.DataFrame, cost: str) -> str:
    """The provenance labels the trials recorded for ``cost`` (``measured / fitted, extrapolated``), if any."""
    column = f"{cost}_provenance"
    if column not in trials.columns:
        return ""
    return " / ".join(sorted({headline(str(v)) for v in trials[column].dropna()}))


def layer_view_data(front: pd.DataFrame, layers: Sequence[str]) -> LayerViewData:
    """Matrices of each policy field for the front members (rows ordered as ``front``)."""
    values = {
        field: np.array([[row[f"{layer}.{field}"] for layer in layers] for _, row in front.iterrows()], float).reshape(
            len(front), len(layers)
        )
        for field in LAYER_FIELDS
    }
    return LayerViewData(members=tuple(f"#{int(n)}" for n in front["number"]), layers=tuple(layers), values=values)


def draw_pareto(data: ParetoPlotData, path: Path, title: str) -> None:
    """Scatter of all trials, the front as a staircase, the baseline as a star; log-scale cost axis."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _pareto_axes(ax, data)
    ax.set_title(title)
    save_figure(fig, path)


def draw_device_fronts(panels: Sequence[tuple[str, ParetoPlotData]], path: Path, title: str) -> None:
    """One study's fronts on several devices, side by side (one panel per device, each on its own cost axis)."""
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False)
    for ax, (device, data) in zip(axes.flat, panels, strict=False):
        _pareto_axes(ax, data)
        ax.set_title(device, fontsize=10)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def _pareto_axes(ax: plt.Axes, data: ParetoPlotData) -> None:
    ok = data.trial_feasible
    ax.scatter(data.trial_x[ok], data.trial_y[ok], s=14, c="0.6", label="trials")
    if (~ok).any():
        ax.scatter(data.trial_x[~ok], data.trial_y[~ok], s=14, c="0.8", marker="x", label="infeasible")
    if len(data.front_x):
        ax.step(data.front_x[data.staircase], data.front_y[data.staircase], where="post", c="tab:red", lw=1.2)
        ax.scatter(data.front_x, data.front_y, s=28, c="tab:red", label="Pareto front", zorder=3)
    if np.isfinite(data.baseline_x):  # a device that cannot run the float model has no baseline point
        ax.scatter(
            [data.baseline_x], [data.baseline_y], s=160, marker="*", c="tab:blue", label="uncompressed", zorder=4
        )
    markers = "DsP^vX<>ph"
    for index, (name, x, y) in enumerate(data.references):
        if np.isfinite(x) and np.isfinite(y):  # one marker each, named in the legend (labels beside would collide)
            color = plt.get_cmap("tab10")(2 + index % 8)
            ax.scatter([x], [y], s=40, marker=markers[index % len(markers)], color=color, label=name, zorder=3)
    ax.set_xscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    low, high = ax.get_xlim()
    if high / low < 30:  # minor labels help within a decade or so and overlap beyond it
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=7)
    else:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(data.x_label, fontsize=8)
    ax.set_ylabel(data.y_label)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7 if data.references else 8, ncol=2 if data.references else 1)


def draw_layer_view(data: LayerViewData, path: Path, title: str) -> None:
    """One heat map per technique field (weight bits, activation bits, sparsity, channel keep): front members x
    layers."""
    fig, axes = plt.subplots(
        1, len(LAYER_FIELDS), figsize=(4 + 1.2 * len(data.layers) * 2, 1.5 + 0.35 * len(data.members)), squeeze=False
    )
    for ax, field in zip(axes[0], LAYER_FIELDS, strict=True):
        matrix = data.values[field]
        # Darker = more compressed in every panel (fewer bits, more sparsity, fewer channels kept).
        cmap = "viridis_r" if technique_of_field(field).larger_compresses else "viridis"
        image = ax.imshow(matrix, aspect="auto", cmap=cmap)
        low, high = image.get_clim()
        for (i, j), value in np.ndenumerate(matrix):
            text = f"{value:g}" if field.endswith("bits") else f"{value:.2f}"
            shade = (value - low) / (high - low) if high > low else 0.5
            dark_cell = shade < 0.5 if cmap == "viridis" else shade > 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if dark_cell else "k")
        ax.set_title(field.replace("_", " "), fontsize=9)
        ax.set_xticks(range(len(data.layers)), data.layers, rotation=60, fontsize=7)
        ax.set_yticks(
            range(len(data.members)), data.members if field == LAYER_FIELDS[0] else [""] * len(data.members), fontsize=7
        )
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Lays out ``fig`` and writes it to ``path`` as PNG, atomically."""
    fig.tight_layout()
    atomic_write_bytes(path, lambda handle: fig.savefig(handle, format="png", dpi=120))
    plt.close(fig)
