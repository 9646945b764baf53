"""How far the analytic device profiles are from PUBLISHED MEASURED latencies of well-known models.

Each row builds a published model from this project's own model families at the published shape (input, width,
classes, precision), predicts its latency with a device's uncalibrated analytic profile, and sets that beside a
latency someone measured and published on that device or its nearest kin. Where the measured board is a kin
(another part of the same core family), the profile's clock is replaced by the board's published clock; that
is the only constant changed, and it is a specification, not a fit. Published multi-threaded figures are
compared with the single-thread prediction divided by the thread count (ideal scaling: an assumption that
favours the prediction). No profile constant was fitted to any of these figures: they are the validation set.

Energy, where published, is compared with the profile's active power times the predicted latency; the kin's
supply differs from the profile's part, so that error says little beyond the order of magnitude.

Usage: python benchmarks/analytic_devices.py
Writes results/benchmarks/analytic_devices.json. Needs no measurement (runs in seconds, on any machine).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from result_file import write_result

from latency_models.device import DeviceProfile, load_device, profile_from_dict
from latency_models.keys import layer_keys
from latency_models.kinds.analytic.model import AnalyticCostModel
from latency_models.kinds.offload.model import OffloadCostModel
from latency_models.layered import LayeredCostModel
from latency_models.predictor import macs
from nas.provenance import run_provenance
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate
from search_spaces.spec import load_model_spec, spec_from_dict

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "analytic_devices.json"

XNNPACK = "google/XNNPACK README.md (commit 0085ae36), Performance tables, benchmarked 2020 with end2end_bench"
CORAL = "https://coral.ai/docs/edgetpu/benchmarks (Table 1, Desktop CPU + USB Accelerator, USB 3.0)"
TINY_05 = "mlcommons/tiny_results_v0.5 closed/reference/results/Nucleo-L4R5ZI/{task}/performance/results.txt"
TINY_10_OCTO = (
    "mlcommons/tiny_results_v1.0 closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/{task}/{kind}/results.txt"
)
TINY_10_ST = (
    "mlcommons/tiny_results_v1.0 closed/STMicroelectronics/results/NUCLEO-H7A3ZI-Q/{task}/performance/results.txt"
)
ESP_NN = "espressif/esp-tflite-micro README.md, ESP-NN Performance Comparison (invoke() time, internal memory)"


@dataclass(frozen=True, kw_only=True)
class Model:
    """A published model rebuilt from one of the project's families."""

    name: str
    family: str
    input_shape: tuple[int, int, int]
    classes: int
    width: float | None = None
    bits: tuple[int, int] = (8, 8)
    node_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    def graph(self) -> ModelGraph:
        """The model's graph at its published shape."""
        spec = load_model_spec(self.family, width_multiplier=self.width)
        raw = json.loads(spec.to_json())
        for node in raw["nodes"]:
            node.update(self.node_changes.get(node["name"], {}))
        return analyze(spec_from_dict(raw), self.input_shape, self.classes)


@dataclass(frozen=True, kw_only=True)
class Published:
    """One published measurement and how it maps onto a profile."""

    device: str
    kin: str
    model: Model
    latency_ms: float
    source: str
    runtime: str
    clock_hz: float | None = None  # the measured board's clock, where it is a kin with another clock
    threads: int = 1
    energy_uj: float | None = None


MOBILENET_FP32 = Model(
    name="MobileNet v1 1.0 224 (float32)",
    family="mobilenet_v1",
    width=1.0,
    input_shape=(224, 224, 3),
    classes=1000,
    bits=(32, 32),
)
MOBILENET_INT8 = Model(
    name="MobileNet v1 1.0 224 (int8)", family="mobilenet_v1", width=1.0, input_shape=(224, 224, 3), classes=1000
)
KWS = Model(
    name="MLPerf Tiny KWS DS-CNN (int8)",
    family="dscnn",
    input_shape=(49, 10, 1),
    classes=12,
    node_changes={"stem": {"kernel": [6, 6], "stride": [2, 2]}},
    note="stem 6x6 stride 2 for the published 10x4 stride 2 (cost keys take square kernels; MACs within 1.3%)",
)
IC = Model(name="MLPerf Tiny IC ResNet-8 (int8)", family="resnet8", input_shape=(32, 32, 3), classes=10)
VWW = Model(
    name="MLPerf Tiny VWW MobileNet v1 0.25 (int8)",
    family="mobilenet_v1",
    width=0.25,
    input_shape=(96, 96, 3),
    classes=2,
)
PERSON = Model(
    name="TFLM person detection MobileNet v1 0.25 (int8)",
    family="mobilenet_v1",
    width=0.25,
    input_shape=(96, 96, 1),
    classes=2,
)
L4R5 = "NUCLEO-L4R5ZI (Cortex-M4F, 120 MHz)"
H7A3 = "NUCLEO-H7A3ZI-Q (Cortex-M7, 280 MHz)"

PUBLISHED = (
    Published(
        device="rpi4",
        kin="Raspberry Pi 4 (BCM2711), 4 threads",
        model=MOBILENET_FP32,
        latency_ms=75.0,
        threads=4,
        source=XNNPACK,
        runtime="XNNPACK end2end_bench",
    ),
    Published(
        device="android_a76",
        kin="Pixel 3a (Kryo 360 Gold, Cortex-A75 class, 2.0 GHz), 1 thread",
        model=MOBILENET_FP32,
        latency_ms=88.0,
        clock_hz=2.0e9,
        source=XNNPACK,
        runtime="XNNPACK end2end_bench",
    ),
    Published(
        device="coral_usb",
        kin="Edge TPU USB Accelerator (USB 3.0) on a desktop host",
        model=MOBILENET_INT8,
        latency_ms=2.4,
        source=CORAL,
        runtime="Edge TPU C++ benchmark",
    ),
    Published(
        device="stm32h7",
        kin=H7A3,
        model=KWS,
        latency_ms=13.408 / 800 * 1000,
        clock_hz=280e6,
        source=TINY_10_ST.format(task="kws"),
        runtime="X-CUBE-AI 7.3",
    ),
    Published(
        device="stm32h7",
        kin=H7A3,
        model=IC,
        latency_ms=10.869 / 200 * 1000,
        clock_hz=280e6,
        source=TINY_10_ST.format(task="ic"),
        runtime="X-CUBE-AI 7.3",
    ),
    Published(
        device="stm32h7",
        kin=H7A3,
        model=VWW,
        latency_ms=10.141 / 200 * 1000,
        clock_hz=280e6,
        source=TINY_10_ST.format(task="vww"),
        runtime="X-CUBE-AI 7.3",
    ),
    Published(
        device="nrf52840",
        kin=L4R5,
        model=KWS,
        latency_ms=18.192 / 100 * 1000,
        clock_hz=120e6,
        source=TINY_05.format(task="kws"),
        runtime="TFLite Micro 2.3.1 (MLPerf Tiny reference)",
    ),
    Published(
        device="nrf52840",
        kin=L4R5,
        model=IC,
        latency_ms=70.426 / 100 * 1000,
        clock_hz=120e6,
        source=TINY_05.format(task="ic"),
        runtime="TFLite Micro 2.3.1 (MLPerf Tiny reference)",
    ),
    Published(
        device="nrf52840",
        kin=L4R5,
        model=VWW,
        latency_ms=60.054 / 100 * 1000,
        clock_hz=120e6,
        source=TINY_05.format(task="vww"),
        runtime="TFLite Micro 2.3.1 (MLPerf Tiny reference)",
    ),
    Published(
        device="nrf52840",
        kin=L4R5,
        model=KWS,
        latency_ms=19.962 / 200 * 1000,
        clock_hz=120e6,
        energy_uj=5230.273,
        source=TINY_10_OCTO.format(task="kws", kind="performance and energy"),
        runtime="microTVM with CMSIS-NN",
    ),
    Published(
        device="nrf52840",
        kin=L4R5,
        model=IC,
        latency_ms=38.955 / 100 * 1000,
        clock_hz=120e6,
        energy_uj=20236.298,
        source=TINY_10_OCTO.format(task="ic", kind="performance and energy"),
        runtime="microTVM with CMSIS-NN",
    ),
    Published(
        device="nrf52840",
        kin=L4R5,
        model=VWW,
        latency_ms=30.122 / 100 * 1000,
        clock_hz=120e6,
        energy_uj=15531.354,
        source=TINY_10_OCTO.format(task="vww", kind="performance and energy"),
        runtime="microTVM with CMSIS-NN",
    ),
    Published(
        device="esp32s3",
        kin="ESP32-S3 at 240 MHz",
        model=PERSON,
        latency_ms=54.0,
        source=ESP_NN,
        runtime="TFLite Micro with ESP-NN",
    ),
)


def kin_profile(device: DeviceProfile, clock_hz: float | None) -> DeviceProfile:
    """``device`` with the measured board's clock in its analytic section (nothing else changes)."""
    if clock_hz is None:
        return device
    raw = copy.deepcopy(device.to_dict())
    raw["analytic"]["clock_hz"] = {"value": clock_hz, "source": "the measured board's published clock"}
    return profile_from_dict(raw, f"{device.name} at the kin's clock")


def analytic_model(device: DeviceProfile) -> LayeredCostModel:
    """The uncalibrated analytic model of ``device`` (an accelerator's with its host's analytic model)."""
    if device.offload is not None:
        return OffloadCostModel(device, AnalyticCostModel(load_device(device.offload["host_device"])))
    return AnalyticCostModel(device)


def compare(row: Published) -> dict[str, Any]:
    """One row of the table: prediction, publication and the error."""
    device = kin_profile(load_device(row.device), row.clock_hz)
    graph = row.model.graph()
    weight_bits, activation_bits = row.model.bits
    candidate = Candidate.uniform(graph, weight_bits=weight_bits, activation_bits=activation_bits)
    cost = analytic_model(device).cost(graph, candidate)
    predicted = cost.latency_ms.value / row.threads
    result = {
        "device": row.device,
        "measured_on": row.kin,
        "runtime": row.runtime,
        "model": row.model.name,
        "model_note": row.model.note,
        "macs": int(sum(macs(key) for _, key in layer_keys(graph, candidate))),
        "precision": f"w{weight_bits}a{activation_bits}",
        "predicted_ms": round(predicted, 3),
        "published_ms": round(row.latency_ms, 3),
        "error": round(predicted / row.latency_ms - 1, 4),
        "provenance": cost.latency_ms.label,
        "adjustments": [
            *([f"clock {row.clock_hz / 1e6:g} MHz (the board's)"] if row.clock_hz else []),
            *([f"single-thread prediction / {row.threads} (ideal scaling)"] if row.threads > 1 else []),
        ],
        "source": row.source,
    }
    if row.energy_uj is not None:
        predicted_uj = device.active_power.watts * predicted * 1000
        result |= {
            "predicted_energy_uj": round(predicted_uj, 1),
            "published_energy_uj": row.energy_uj,
            "energy_error": round(predicted_uj / row.energy_uj - 1, 4),
        }
    return result


def main() -> None:
    rows = [compare(row) for row in PUBLISHED]
    ratios = np.array([row["predicted_ms"] / row["published_ms"] for row in rows])
    factor = np.exp(np.abs(np.log(ratios)))
    result = {
        "rows": rows,
        "median_abs_error": round(float(np.median(np.abs(ratios - 1))), 4),
        "within_factor_2": round(float(np.mean(factor <= 2)), 4),
        "within_factor_3": round(float(np.mean(factor <= 3)), 4),
        "worst_factor": round(float(factor.max()), 2),
        "method": (__doc__ or "").strip().split("\n\n")[0],
        "provenance": run_provenance(),
    }
    write_result(OUT, result)
    for row in rows:
        sign = "+" if row["error"] >= 0 else ""
        print(
            f"{row['device']:12s} {row['model']:48s} predicted {row['predicted_ms']:9.3f} ms  published "
            f"{row['published_ms']:8.2f} ms  error {sign}{row['error']:.0%}"
        )
    print(
        f"median |error| {result['median_abs_error']:.0%}; within 2x {result['within_factor_2']:.0%}, within 3x "
        f"{result['within_factor_3']:.0%}; worst {result['worst_factor']}x"
    )
    assert all(math.isfinite(r["predicted_ms"]) for r in rows)


if __name__ == "__main__":
    main()
