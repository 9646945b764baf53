"""Every file a search times on this host is kept as a measured model, so the host's predictor learns from it
(``latency_models.correction``): the next study's budget screen, and every prediction after it, is corrected by
what the earlier searches measured."""

from __future__ import annotations

import hashlib
from pathlib import Path

from latency_models.correction import MeasuredModel, load_measured_models, measured_models_json, measured_models_path
from latency_models.files import atomic_write_text
from latency_models.host import cpu_facts
from latency_models.layered import LayeredCostModel
from nas.locks import exclusive


def content_key(content: bytes) -> str:
    """A file's identity: the SHA-256 of its bytes."""
    return hashlib.sha256(bytes(content)).hexdigest()


def remember_measured(model: LayeredCostModel, measured: MeasuredModel) -> Path:
    """Adds ``measured`` to the models kept for ``model``'s device, kernel set and table on this CPU (once per
    file: a model already kept is not added again); returns the file. Workers and studies add under a lock."""
    device, kernels = model.device.name, model.kernel_set
    basis = model.calibration_basis(model.device, kernels)
    path = measured_models_path(device, kernels, basis)
    with exclusive(path.with_name(path.name + ".lock")):
        kept = load_measured_models(path)
        if all(m.name != measured.name for m in kept):
            header = {"device": device, "kernel_set": kernels, "basis": basis, "cpu": cpu_facts()}
            atomic_write_text(path, measured_models_json([*kept, measured], header))
    return path
