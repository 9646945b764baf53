"""What Vela estimates for a compiled file, read from the two CSV files it writes with ``--verbose-performance``.

Vela 5.2.0 writes, in its ``--output-dir``:

- ``<model>_summary_<system config>.csv``: one row for the network: accelerator, system config, memory mode,
  ``core_clock`` (Hz), ``inference_time`` (seconds: ``cycles_total / core_clock``), ``cycles_npu`` (the NPU's
  compute) and ``cycles_total`` (with the memory traffic it does not hide), and per memory area
  (``sram``, ``dram``, ``on_chip_flash``, ``off_chip_flash``) ``<area>_memory_used`` in KiB, with
  ``weights_storage_area`` and ``feature_map_storage_area`` naming where weights and the arena live;
- ``<model>_per-layer.csv``: one row per operation Vela scheduled, several for one TFLite operator where it
  splits it (a convolution and its fused ReLU): ``Original Operator`` (the TFLite op), ``Target`` (``NPU`` or
  ``CPU``), ``Op Cycles`` (its share of ``cycles_total``), ``NPU`` (its compute cycles), ``MAC Count`` and
  ``Name`` (the TFLite operator's output tensor).

Operations the NPU does not run are listed with target ``CPU`` and no cycles: Vela estimates only the NPU. An
operator Vela decomposes (a MEAN into a depthwise convolution and a multiply) has rows named after tensors of its
own before the row that writes the operator's output.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from latency_models.errors import CostModelError

KIB = 1024
AREAS = ("sram", "dram", "on_chip_flash", "off_chip_flash")
AREA_NAMES = {"sram": "SRAM", "dram": "DRAM", "on_chip_flash": "on-chip flash", "off_chip_flash": "off-chip flash"}


@dataclass(frozen=True, kw_only=True)
class VelaLayer:
    """One TFLite operator as Vela placed and costed it."""

    tensor: str  # the operator's output tensor, as Vela names it
    operator: str  # the TFLite operator as Vela names it (Conv2D, FullyConnected, Quantize, ...)
    target: Literal["NPU", "CPU"]
    cycles: int | None  # its share of the network's cycles (None on the CPU: Vela does not cost the CPU)
    npu_cycles: int | None  # its compute cycles on the NPU
    macs: int


@dataclass(frozen=True, kw_only=True)
class VelaEstimate:
    """Vela's performance estimate of one file for one configuration (an estimate, never a measurement)."""

    vela_version: str
    accelerator: str  # as Vela reports it: Ethos_U55_128
    system_config: str
    memory_mode: str
    clock_hz: float
    npu_cycles: int
    total_cycles: int
    inference_ms: float
    memory_bytes: dict[str, int]  # peak use per memory area (``AREAS``)
    weights_area: str
    feature_map_area: str
    compiled_bytes: int  # the file Vela writes: the model with its NPU command stream and encoded weights
    layers: tuple[VelaLayer, ...]
    compiled: bytes = field(default=b"", repr=False)  # that file, for an export to write beside its .tflite
    per_layer_csv: str = field(default="", repr=False)  # Vela's per-layer report, as it wrote it

    @property
    def source(self) -> str:
        """What gave the figures: ``Vela 5.2.0 (<system config>, <memory mode>)``."""
        return f"Vela {self.vela_version} ({self.system_config}, {self.memory_mode})"

    @property
    def label(self) -> str:
        """How every figure of it is labelled: ``estimated by Vela 5.2.0 (<system config>, <memory mode>)``."""
        return f"estimated by {self.source}"

    @property
    def sram_bytes(self) -> int:
        """The SRAM Vela's plan uses (the tensor arena with a shared SRAM; the NPU's cache with a dedicated one)."""
        return self.memory_bytes["sram"]

    @property
    def off_chip_flash_bytes(self) -> int:
        """The off-chip flash Vela's plan uses (weights and command stream, where the system has such flash)."""
        return self.memory_bytes["off_chip_flash"]

    def layer_ms(self, layer: VelaLayer) -> float | None:
        """A layer's estimated time in milliseconds (None on the CPU)."""
        return None if layer.cycles is None else layer.cycles / self.clock_hz * 1000

    @property
    def npu_layers(self) -> tuple[VelaLayer, ...]:
        """The operators Vela placed on the NPU."""
        return tuple(layer for layer in self.layers if layer.target == "NPU")

    @property
    def cpu_layers(self) -> tuple[VelaLayer, ...]:
        """The operators Vela leaves to the CPU."""
        return tuple(layer for layer in self.layers if layer.target == "CPU")

    def cpu_operators(self, names: dict[str, str]) -> tuple[str, ...]:
        """The operators Vela leaves to the CPU as ``layer (Operator)``, ``names`` mapping output tensors to layers."""
        return tuple(f"{names.get(layer.tensor, layer.tensor)} ({layer.operator})" for layer in self.cpu_layers)


def read_report(output_dir: Path, *, vela_version: str, compiled: bytes, outputs: frozenset[str]) -> VelaEstimate:
    """The estimate in the CSV files Vela wrote to ``output_dir`` for a model whose operators write the tensors
    named ``outputs``; ``compiled`` is the model file it wrote."""
    summary = _one_row(_only(output_dir, "*_summary_*.csv"))
    per_layer_path = _only(output_dir, "*_per-layer.csv")
    return VelaEstimate(
        vela_version=vela_version,
        accelerator=summary["accelerator_configuration"],
        system_config=summary["system_config"],
        memory_mode=summary["memory_mode"],
        clock_hz=_number(summary, "core_clock"),
        npu_cycles=round(_number(summary, "cycles_npu")),
        total_cycles=round(_number(summary, "cycles_total")),
        inference_ms=_number(summary, "inference_time") * 1000,
        memory_bytes={area: round(_number(summary, f"{area}_memory_used") * KIB) for area in AREAS},
        weights_area=summary["weights_storage_area"],
        feature_map_area=summary["feature_map_storage_area"],
        compiled_bytes=len(compiled),
        layers=per_layer(per_layer_path, outputs),
        compiled=compiled,
        per_layer_csv=per_layer_path.read_text(),
    )


def per_layer(path: Path, outputs: frozenset[str]) -> tuple[VelaLayer, ...]:
    """One ``VelaLayer`` per TFLite operator, in Vela's order, summing the rows Vela split it into: rows that
    write the same output (a convolution and its fused activation), and rows of Vela's own tensors (``outputs``
    names the model's) before the row of the operator that owns them."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    pending: list[dict[str, str]] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if pending and pending[-1]["Original Operator"] != row["Original Operator"]:
                _flush(groups, pending)
            pending.append(row)
            if row["Name"] in outputs:
                groups.setdefault((row["Original Operator"], row["Name"]), []).extend(pending)
                pending = []
    _flush(groups, pending)
    return tuple(_layer(operator, tensor, rows) for (operator, tensor), rows in groups.items())


def _flush(groups: dict[tuple[str, str], list[dict[str, str]]], pending: list[dict[str, str]]) -> None:
    """Rows whose operator never wrote a model tensor stand on their own (an output Vela renamed)."""
    for row in pending:
        groups.setdefault((row["Original Operator"], row["Name"]), []).append(row)
    pending.clear()


def _layer(operator: str, tensor: str, rows: list[dict[str, str]]) -> VelaLayer:
    on_npu = any(row["Target"] == "NPU" for row in rows)
    cycles = sum(round(_number(row, "Op Cycles")) for row in rows)
    npu_cycles = sum(round(_number(row, "NPU")) for row in rows)
    return VelaLayer(
        tensor=tensor,
        operator=operator,
        target="NPU" if on_npu else "CPU",
        cycles=cycles if on_npu else None,
        npu_cycles=npu_cycles if on_npu else None,
        macs=sum(round(_number(row, "MAC Count")) for row in rows),
    )


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in folder.iterdir()) or "nothing"
        raise CostModelError(f"Vela wrote {len(found)} files matching {pattern} (it wrote {names}); expected one")
    return found[0]


def _one_row(path: Path) -> dict[str, str]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != 1:
        raise CostModelError(f"Vela's summary {path.name} has {len(rows)} rows; expected one")
    return rows[0]


def _number(row: dict[str, str], column: str) -> float:
    """A finite, non-negative number from a column Vela wrote."""
    try:
        value = float(row[column])
    except (KeyError, ValueError):
        raise CostModelError(
            f"Vela's report has no number in column {column!r}; is ethos-u-vela 5.2.0 installed?"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise CostModelError(f"Vela's report gives {column} = {value}; expected a finite number >= 0")
    return value
