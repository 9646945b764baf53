"""The model card of an accepted model (JSON and Markdown): what it is, what it costs where, who pays for it,
whether the export matches, and everything needed to reproduce it."""

from __future__ import annotations

import hashlib
from typing import Any

from latency_models.cost import COST_FIGURES
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.layered import LayeredCostModel
from nas.analysis.audit import Audit
from nas.deploy.export_record import ExportRecord, KernelResult
from nas.objectives import term
from nas.provenance import run_provenance


def sha256(content: bytes) -> str:
    """Hex SHA-256 of ``content``."""
    return hashlib.sha256(content).hexdigest()


def cost_model_identity(model: LayeredCostModel) -> dict[str, Any]:
    """What the cost figures came from: the measured table and calibration files by hash, or the analytic
    constants by digest."""
    device, kernels = model.device, model.kernel_set
    identity: dict[str, Any] = {"device": device.name, "kernel_set": kernels}
    if isinstance(model, MeasuredCostModel):
        identity |= {"kind": "measured table", "table_sha256": sha256(device.table_path(kernels).read_bytes())}
    else:
        identity |= {"kind": "analytic", "basis": model.calibration_basis(device, kernels)}
    calibration = device.calibration_path(kernels)
    if model.calibration is not None and calibration.exists():
        identity["calibration_sha256"] = sha256(calibration.read_bytes())
    return identity


def build_card(
    *,
    study: str,
    trial: int,
    version: int,
    choice: str,
    figures: dict[str, Any],
    audit: Audit,
    robustness: dict[str, Any],
    record: ExportRecord,
    model_bytes: bytes,
    hashes: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    """The card's JSON form."""
    return {
        "study": study,
        "trial": trial,
        "version": version,
        "why": choice,
        "candidate": record.candidate,
        "figures": figures,
        "test_accuracy": {"jax": record.jax_test_accuracy, "litert": [k.accuracy for k in record.kernels]},
        "audit": audit.to_dict(),
        "robustness": robustness,
        "parity": {"passed": record.passed, "kernels": [_parity(check) for check in record.kernels]},
        "measured_here": {} if record.cost_check is None else record.cost_check.to_dict(),
        "hashes": {"model_sha256": sha256(model_bytes), **hashes},
        "provenance": run_provenance(),
        "command": command,
    }


def _parity(check: KernelResult) -> dict[str, Any]:
    """A kernel set's parity with the JAX model, as the card shows it (its latency is under ``measured_here``)."""
    return {
        "delegate": check.delegate,
        "accuracy": check.accuracy,
        "agreement": check.agreement,
        "kernel_agreement": check.kernel_agreement,
        "passed": check.passed,
    }


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown, for people."""
    lines = [
        f"# {card['study']}: trial {card['trial']}, version {card['version']}, for {card['figures']['device']}",
        "",
        card["why"],
        "",
        "## Cost",
        "",
        card["figures"].get("latency_source", ""),
        "",
        "| figure | value | provenance |",
        "|---|---|---|",
    ]
    for name in COST_FIGURES:
        figure = card["figures"].get(name)
        if figure is not None and figure.get("value") is not None:
            shown = term(name).format(figure["value"])
            lines.append(f"| {term(name).label} | {shown} | {figure.get('provenance', '?')} |")
    audit = card["audit"]
    flagged = ", ".join(map(str, audit["flagged_classes"])) or "none"
    lines += [
        "",
        "## Accuracy and who pays for the compression",
        "",
        f"Validation accuracy {card['figures']['val_accuracy']:.4f}; test accuracy {card['test_accuracy']['jax']:.4f}"
        f" (JAX), {', '.join(f'{a:.4f}' for a in card['test_accuracy']['litert'])} (LiteRT kernels).",
        f"Worst class {audit['worst_class']}: {audit['worst_drop']:.1%} below the uncompressed model on test "
        f"({audit['confidence']:.0%} interval [{audit['worst_drop_interval'][0]:.1%}, "
        f"{audit['worst_drop_interval'][1]:.1%}]); flagged classes: {flagged}.",
        f"On degraded test inputs ({', '.join(f'{k}: {v}' for k, v in card['robustness']['severities'].items())}): "
        f"mean accuracy {card['robustness']['accuracy']['mean']:.4f} (uncompressed model "
        f"{card['robustness']['baseline_mean']:.4f}).",
        "",
        "## Reproduce",
        "",
        f"Parity with the JAX model: {'passed' if card['parity']['passed'] else 'FAILED'}.",
        "",
        "```",
        card["command"],
        "```",
        "",
        *[f"- {name}: `{value}`" for name, value in _flat(card["hashes"]).items()],
        f"- code: `{card['provenance'].get('commit', '?')}`",
    ]
    return "\n".join(lines) + "\n"


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
