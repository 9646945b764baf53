"""``nas report --study S``: the study as one self-contained page (``report.html``, images embedded, no network)
and as Markdown (``report.md``, images beside it): fronts per device with baselines, the hypervolume history,
the front's per-layer configurations, diagnostics, the per-class audit, robustness, export verification and a
provenance manifest. It reruns ``nas pareto`` and ``nas plot`` first, so every table is current.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd

from latency_models.device import available_devices
from latency_models.registry import cost_model
from nas.analysis.baselines_report import judge
from nas.analysis.compare import scaled_hypervolume, shared_scale
from nas.analysis.pareto import trials_frame
from nas.analysis.plots import save_figure
from nas.analysis.report import device_fronts_plot, pareto_report, plot_report
from nas.checkpoint import atomic_write_bytes
from nas.compress.float_regions import load_spec
from nas.deploy.export_record import DeviceFigures, LatencyCheck, read_records
from nas.deploy.model_card import cost_model_identity
from nas.objectives import directions
from nas.paths import StudyPaths
from nas.provenance import run_provenance
from nas.search.saved import SavedStudy
from nas.training.data import load_dataset

HISTORY_MARKS = (25, 50, 100)


@dataclass(frozen=True, kw_only=True)
class Section:
    """One section: a title, paragraphs, tables and images (paths to PNG files)."""

    title: str
    text: tuple[str, ...] = ()
    tables: tuple[pd.DataFrame, ...] = ()
    images: tuple[Path, ...] = ()


def hypervolume_history(trials: pd.DataFrame, objectives: tuple[str, ...]) -> pd.DataFrame:
    """The front's hypervolume after each finished feasible trial, in one space for the whole study (losses
    scaled over all feasible trials, the reference 10% beyond the worst)."""
    ok = trials[(trials["state"] == "COMPLETE") & (trials["feasible"] == True)].sort_values("number")  # noqa: E712
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions(objectives)])
    losses = ok[list(objectives)].to_numpy(float) * signs
    if len(losses) == 0:
        return pd.DataFrame({"trial": [], "hypervolume": []})
    low, span = shared_scale(losses)
    volumes = [scaled_hypervolume(losses[:count], low, span) for count in range(1, len(losses) + 1)]
    return pd.DataFrame({"trial": ok["number"].to_numpy(int), "hypervolume": np.round(volumes, 4)})


def _history_plot(history: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.step(range(1, len(history) + 1), history["hypervolume"], where="post")
    ax.set_xlabel("feasible trials finished")
    ax.set_ylabel("front hypervolume")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def build_sections(name: str, results_dir: Path, storage: str | None) -> list[Section]:
    """Every section of the report, its tables and plots refreshed."""
    paths = StudyPaths(results_dir, name)
    report = pareto_report(name, results_dir=results_dir, storage=storage)
    plots = plot_report(name, results_dir=results_dir, storage=storage)
    saved = SavedStudy.open(name, results_dir, storage)
    study, config = saved.study, saved.config
    devices = device_fronts_plot(name, available_devices(), results_dir=results_dir, storage=storage)
    history = hypervolume_history(trials_frame(study), config.objectives)
    _history_plot(history, paths.plot("hypervolume"), f"{name}: hypervolume of the front")
    front = report.front
    return [
        _summary(name, study, config, front),
        Section(
            title="Fronts per device, with baselines",
            text=(
                f"Searched for {config.device}; the same trials re-scored for every device (`nas pareto --device`).",
            ),
            images=(plots[0], devices),
            tables=(_baselines_table(paths, front, config.objectives),),
        ),
        Section(
            title="Hypervolume history",
            tables=(_history_marks(history),),
            images=(paths.plot("hypervolume"),),
        ),
        Section(title="Per-layer configurations of the front", images=(paths.plot("layers"),)),
        _diagnostics(results_dir, config),
        Section(title="Per-class audit (test split)", tables=(_audit_table(paths, front),)),
        Section(title="Robustness under degraded input (test split)", tables=(_robustness_table(paths),)),
        Section(title="Export verification", tables=(_verification_table(paths),)),
        Section(title="Provenance", tables=(_provenance_table(study, config),)),
    ]


def _summary(name: str, study: optuna.Study, config: Any, front: pd.DataFrame) -> Section:
    baseline = study.user_attrs.get("baseline", {})
    finished = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    text = (
        f"Study {name}: {config.model} on {config.dataset}, searched for {config.device}, objectives "
        f"{', '.join(config.objectives)}; {finished} finished trials, {len(front)} on the front. Uncompressed "
        f"validation accuracy {baseline.get('val_accuracy', float('nan')):.4f}.",
    )
    columns = [c for c in ("number", "test_accuracy", *config.objectives, "worst_class_drop", "robust_accuracy")]
    return Section(title="Summary", text=text, tables=(front[[c for c in columns if c in front.columns]],))


def _baselines_table(paths: StudyPaths, front: pd.DataFrame, objectives: tuple[str, ...]) -> pd.DataFrame:
    if not paths.baselines.exists():
        return pd.DataFrame({"baselines": [f"not built: `nas baselines --study {paths.name}`"]})
    points = json.loads(paths.baselines.read_text())["points"]
    rows = []
    for point in points:
        verdict = judge(front, point, objectives)
        metrics = point.get("metrics") or {}
        rows.append(
            {
                "baseline": point["name"],
                "val_accuracy": metrics.get("val_accuracy"),
                "test_accuracy": point.get("test_accuracy"),
                **{o: metrics.get(o) for o in objectives if o != "accuracy"},
                "front": verdict.verdict,
                "detail": verdict.detail,
            }
        )
    return pd.DataFrame(rows)


def _history_marks(history: pd.DataFrame) -> pd.DataFrame:
    marks = sorted({m for m in HISTORY_MARKS if m <= len(history)} | ({len(history)} if len(history) else set()))
    return pd.DataFrame({"feasible trials": marks, "hypervolume": [history["hypervolume"].iloc[m - 1] for m in marks]})


def _diagnostics(results_dir: Path, config: Any) -> Section:
    stem = f"{Path(config.model).stem}_{Path(config.dataset).stem}_{config.device}"
    table = results_dir / "analyze" / f"{stem}.csv"
    if not table.exists():
        command = f"nas analyze --model {config.model} --dataset {config.dataset} --device {config.device}"
        return Section(title="Diagnostics", text=(f"Not run yet: `{command}`.",))
    return Section(
        title="Diagnostics",
        text=("Single-knob moves from the uncompressed model, best latency saved per accuracy lost first.",),
        tables=(pd.read_csv(table).head(12),),
        images=(table.with_suffix(".png"),),
    )


def _audit_table(paths: StudyPaths, front: pd.DataFrame) -> pd.DataFrame:
    audits = json.loads(paths.audit.read_text()) if paths.audit.exists() else {}
    rows = [
        {
            "trial": int(n),
            "overall change": audits[str(int(n))]["overall_change"],
            "worst class": audits[str(int(n))]["worst_class"],
            "worst drop": audits[str(int(n))]["worst_drop"],
            "95% interval": "[{:.3f}, {:.3f}]".format(*audits[str(int(n))]["worst_drop_interval"]),
            "flagged": " ".join(map(str, audits[str(int(n))]["flagged_classes"])) or "-",
        }
        for n in front["number"]
        if str(int(n)) in audits
    ]
    return pd.DataFrame(rows)


def _robustness_table(paths: StudyPaths) -> pd.DataFrame:
    if not paths.robustness.exists():
        return pd.DataFrame()
    figures = json.loads(paths.robustness.read_text())
    severities = figures.pop("severities", {})
    frame = pd.DataFrame(figures).T.reset_index(names="model")
    return pd.concat([frame, pd.DataFrame([{"model": "severity", **severities}])], ignore_index=True)


def _verification_table(paths: StudyPaths) -> pd.DataFrame:
    if not paths.verification.exists():
        return pd.DataFrame({"exports": [f"none yet: `nas export --study {paths.name} --knee`"]})
    rows = []
    for record in read_records(paths.verification).values():
        check = record.host_check
        ram = (None, None) if check is None else (check.ram_bytes.predicted, check.ram_bytes.measured)
        rows.append(
            {
                "trial": record.trial,
                "parity": "passed" if record.passed else "FAILED",
                "warning": record.quality_warning or "-",
                "JAX test accuracy": record.jax_test_accuracy,
                "LiteRT accuracy": " / ".join(f"{k.accuracy:.4f}" for k in record.kernels),
                **_device_columns(record.device_figures),
                "this host: latency predicted / measured (us)": _pair_us(
                    None if check is None else check.latency.get("xnnpack")
                ),
                "this host: RAM predicted / measured (B)": f"{ram[0]} / {ram[1]}",
            }
        )
    return pd.DataFrame(rows)


def _pair_us(latency: LatencyCheck | None) -> str:
    if latency is None:  # no host cost check (no host table, or an older record)
        return "nan / nan"
    return f"{1000 * latency.predicted_ms:.2f} / {1000 * latency.measured_ms:.2f}"


def _device_columns(device: DeviceFigures | None) -> dict[str, str]:
    """The study device's own figures for an export (provenance in brackets, margins under its memory limits)."""
    if device is None:
        return {}
    figures = device.figures

    def memory(name: str) -> str:
        figure = figures[name]
        limit = "" if figure.limit is None else f" of {figure.limit}, margin {figure.margin_pct:g}%"
        return f"{figure.value:.0f}{limit} ({figure.provenance})"

    name = device.device
    return {
        f"{name}: latency (us)": f"{figures['latency_ms'].value * 1000:.3g} ({figures['latency_ms'].provenance})",
        f"{name}: energy (mJ)": f"{figures['energy_mj'].value:.3g} ({figures['energy_mj'].provenance})",
        f"{name}: RAM (B)": memory("ram_bytes"),
        f"{name}: flash (B)": memory("flash_bytes"),
    }


def _provenance_table(study: optuna.Study, config: Any) -> pd.DataFrame:
    data = load_dataset(config.dataset)
    spec = load_spec(config.model, width_multiplier=config.width_multiplier)
    provenance = run_provenance()
    identity = cost_model_identity(cost_model(config.device, config.kernel_set))
    rows = {
        "command": f"nas search --study {study.study_name} (settings below)",
        "settings": config.to_json(),
        "seed": config.seed,
        "dataset sha256": data.fingerprint(),
        "spec sha256": hashlib.sha256(spec.to_json().encode()).hexdigest(),
        **{f"cost model {key}": value for key, value in identity.items()},
        "commit": f"{provenance['commit']}{' (dirty)' if provenance['dirty'] else ''}",
        "python": provenance["python"],
        **{f"package {name}": version for name, version in provenance["packages"].items()},
        "generated": provenance["date_utc"],
    }
    return pd.DataFrame({"item": list(rows), "value": [str(v) for v in rows.values()]})


def render_html(sections: list[Section], title: str) -> str:
    """The sections as one HTML page with every image inlined."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
        "img{max-width:100%;border:1px solid #eee;margin:.5em 0}h2{border-bottom:1px solid #ddd}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{_inline_code(html.escape(paragraph))}</p>" for paragraph in section.text]
        parts += [table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="") for table in section.tables]
        for image in section.images:
            encoded = base64.b64encode(image.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(image.name)}' src='data:image/png;base64,{encoded}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _inline_code(text: str) -> str:
    """Markdown's `code` spans as HTML <code> elements."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def render_markdown(sections: list[Section], title: str, root: Path) -> str:
    """The sections as Markdown, images linked beside it."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", "", *[f"{p}\n" for p in section.text]]
        for table in section.tables:
            lines += [_markdown_table(table), ""]
        for image in section.images:
            relative = image.relative_to(root) if image.is_relative_to(root) else image
            lines += [f"![{image.stem}]({relative})", ""]
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(none)"
    cells = table.map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)).astype(str)
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(value.replace("|", "/") for value in row) + " |" for row in cells.to_numpy()]
    return "\n".join([header, rule, *rows])


def write_report(name: str, *, results_dir: Path, storage: str | None = None) -> tuple[Path, Path]:
    """Writes ``report.html`` and ``report.md`` of the study; returns their paths."""
    paths = StudyPaths(results_dir, name)
    sections = build_sections(name, results_dir, storage)
    title = f"Study report: {name}"
    html_path, markdown_path = paths.root / "report.html", paths.root / "report.md"
    page = render_html(sections, title)
    atomic_write_bytes(html_path, lambda handle: handle.write(page.encode()))
    text = render_markdown(sections, title, paths.root)
    atomic_write_bytes(markdown_path, lambda handle: handle.write(text.encode()))
    return html_path, markdown_path
