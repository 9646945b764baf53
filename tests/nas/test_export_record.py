"""An export's typed record: the JSON form verification.json holds round-trips unchanged, older records read,
damaged ones are refused in one line and their file is never overwritten."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nas.deploy.export_record import (
    ExportRecord,
    SkippedCostCheck,
    merge_record,
    read_records,
    record_of_model,
)
from nas.errors import ConfigError

BAR = {"low": 0.9387, "high": 0.9415, "source": "JAX fake-quant accuracy of the same candidate", "tolerance": 0.01}
# A record as `nas export` writes it today (a real export's, its candidate and CPU flags cut short).
STORED: dict[str, Any] = {
    "trial": 3,
    "dataset": "digits",
    "model": "results/ex/models/trial-3.tflite",
    "passed": True,
    "candidate": {"conv1": {"sparsity": 0.0, "channel_keep": 1.0, "weight_bits": 8, "activation_bits": 8}},
    "file_bytes": 26160,
    "gzip_bytes": 21008,
    "predicted": {
        "stored_bytes": 22328.0,
        "compressed_bytes": 21082.0,
        "provenance": "exact size accounting of the constants (graph structure not counted)",
    },
    "jax_test_accuracy": 0.9415041782729805,
    "quality_warning": None,
    "kernels": [
        {
            "delegate": "xnnpack",
            "accuracy": 0.9415041782729805,
            "agreement": 1.0,
            "kernel_agreement": None,
            "bar": BAR,
            "latency": {"median_ms": 0.0041269, "p25_ms": 0.0041064, "p75_ms": 0.0041553, "runs": 29, "rejected": 1},
            "passed": True,
        },
        {
            "delegate": "builtin",
            "accuracy": 0.9415041782729805,
            "agreement": 1.0,
            "kernel_agreement": 1.0,
            "bar": BAR,
            "latency": {"median_ms": 0.0233003, "p25_ms": 0.0232487, "p75_ms": 0.0255145, "runs": 25, "rejected": 5},
            "passed": True,
        },
    ],
    "device_figures": {
        "device": "stm32h7",
        "figures": {
            "latency_ms": {"value": 0.00497689104319393, "provenance": "fitted"},
            "energy_mj": {"value": 0.031105569019962063, "provenance": "analytic"},
            "flash_bytes": {"value": 25908.036, "provenance": "fitted", "limit": 2097152, "margin_pct": 98.8},
            "ram_bytes": {"value": 7936.0, "provenance": "exact", "limit": 1048576, "margin_pct": 99.2},
        },
    },
    "latency_provenance": "measured on this host, LiteRT Python interpreter, batch 1, the cost tables' protocol",
    "runtime_memory": {
        "runtime_bytes": 7936,
        "largest_tensor_bytes": 4608,
        "tensors": 10,
        "provenance": "measured: union of the buffers the LiteRT interpreter allocated",
    },
    "cost_check": {
        "device": "host",
        "cpu": {"model": "Intel(R) Xeon(R) Processor", "machine": "x86_64", "logical_cores": 2, "flags": ["avx2"]},
        "latency": {
            "xnnpack": {"predicted_ms": 0.0049769, "provenance": "fitted", "measured_ms": 0.0041269, "error_pct": 20.6},
            "builtin": {
                "predicted_ms": 0.0276912,
                "provenance": "fitted",
                "measured_ms": 0.0233003,
                "error_pct": 18.84,
            },
        },
        "energy_mj": {
            "predicted": 0.031105569019962063,
            "provenance": "analytic",
            "measured": None,
            "measured_note": "RAPL package energy per inference (XNNPACK); None: this machine has no power counter",
        },
        "ram_bytes": {"predicted": 7936, "measured": 7936},
        "flash_bytes": {"predicted": 25908, "measured": 26160},
        "protocol": {"warmup": 20, "rounds": 30, "invokes_per_round": 10, "threads": 1},
    },
}
LAYERS = [{"layer": "conv1", "max_abs_diff": 0.5, "step": 0.0625, "dtype": "int8", "steps": 8.0}]


def _failed() -> dict[str, Any]:
    """The same export failed: a kernel set off, the per-layer comparison kept, no host table to check against."""
    failed = copy.deepcopy(STORED)
    failed["passed"] = failed["kernels"][1]["passed"] = False
    failed["cost_check"] = {"skipped": "no measured latency table for host (run nas profile)"}
    return failed | {"layers": LAYERS, "first_divergent_layer": "conv1"}


def test_the_stored_form_is_the_one_verification_files_already_hold():
    for stored in (STORED, _failed()):
        record = ExportRecord.from_dict(stored)
        assert record.to_dict() == stored
        assert list(record.to_dict()) == list(stored)  # the same keys, in the same order
    failed = ExportRecord.from_dict(_failed())
    assert isinstance(failed.cost_check, SkippedCostCheck) and failed.host_check is None
    assert failed.divergence is not None and failed.divergence.first_layer == "conv1"


def test_a_record_round_trips_through_its_verification_file(tmp_path):
    path = tmp_path / "ex" / "verification.json"
    path.parent.mkdir()
    record = ExportRecord.from_dict(STORED)
    merge_record(path, record)
    merge_record(path, ExportRecord.from_dict(_failed() | {"trial": 4}))
    records = read_records(path)
    assert list(records) == ["trial-3", "trial-4"] and records["trial-3"] == record
    assert json.loads(path.read_text())["trial-3"] == STORED  # written in the stored form
    check = records["trial-3"].host_check
    assert check is not None and check.latency["xnnpack"].measured_ms == 0.0041269
    device = records["trial-3"].device_figures
    assert records["trial-3"].kernels[1].latency is not None
    assert device is not None and device.figures["ram_bytes"].margin_pct == 99.2


def test_an_older_record_without_the_later_parts_loads_with_them_absent():
    older = {key: value for key, value in STORED.items() if key not in ("quality_warning", "runtime_memory")}
    del older["device_figures"], older["cost_check"]
    # Kernel checks before kernel agreement, accuracy bars and the cost tables' timing protocol.
    older["kernels"] = [
        {"delegate": "xnnpack", "accuracy": 0.94, "agreement": 1.0, "latency": {"p50_ms": 0.004}, "passed": True}
    ]
    record = ExportRecord.from_dict(older)
    assert record.quality_warning is None and record.device_figures is None and record.runtime_memory is None
    assert record.cost_check is None and record.host_check is None and record.divergence is None
    (kernel,) = record.kernels
    assert kernel.bar is None and kernel.kernel_agreement is None and kernel.latency is None  # not comparable
    assert "cost_check" not in record.to_dict() and "layers" not in record.to_dict()
    no_cpu = copy.deepcopy(STORED)
    del no_cpu["cost_check"]["cpu"], no_cpu["cost_check"]["energy_mj"]
    check = ExportRecord.from_dict(no_cpu).host_check
    assert check is not None and check.cpu is None and check.energy_mj is None
    assert ExportRecord.from_dict(no_cpu).to_dict() == no_cpu


def test_the_record_of_an_exported_file_is_found_beside_it(tmp_path):
    model = tmp_path / "ex" / "models" / "trial-3.tflite"
    model.parent.mkdir(parents=True)
    assert record_of_model(model) is None  # no verification file: exported elsewhere
    merge_record(tmp_path / "ex" / "verification.json", ExportRecord.from_dict(STORED | {"model": str(model)}))
    found = record_of_model(model)
    assert found is not None and found.trial == 3
    assert record_of_model(model.with_name("trial-9.tflite")) is None


def _refusal(path, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as refused:
        read_records(path)
    assert "\n" not in str(refused.value)


def test_a_damaged_record_is_refused_in_one_line_and_its_file_is_never_overwritten(tmp_path):
    path = tmp_path / "verification.json"
    damaged = {
        "trial-0": {key: value for key, value in STORED.items() if key not in ("jax_test_accuracy", "kernels")},
        "trial-1": STORED | {"cost_check": {"device": "host"}},
        "trial-2": [STORED],
    }
    for key, match in (
        ("trial-0", r"trial-0 in .*verification.json lacks jax_test_accuracy, kernels; move the file away"),
        ("trial-1", r"trial-1 in .*verification.json has a malformed part \(missing 'latency'\); move the file"),
        ("trial-2", r"trial-2 in .*verification.json is not a JSON object \(got list\)"),
    ):
        path.write_text(json.dumps({key: damaged[key]}))
        _refusal(path, match)
        with pytest.raises(ConfigError, match=key):
            merge_record(path, ExportRecord.from_dict(STORED))
        assert json.loads(path.read_text()) == {key: damaged[key]}  # the others' records are kept, not replaced
    path.write_text('{"trial-0": {"model": "x"')
    _refusal(path, r"verification.json is damaged \(.*\); move it away and export the trials again")
    path.write_text("[]")
    _refusal(path, r"is damaged \(not a JSON object\)")
