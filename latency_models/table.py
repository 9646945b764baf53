"""Latency tables: measured op latencies keyed by a frozen ``LayerKey``, stored as CSV with a JSON sidecar.

A row is one op (one exported layer, or one whole-model term such as the interpreter's invoke overhead) at
one shape and precision, with the median latency and its spread over many invokes. The sidecar records the
table's provenance (device, runtime version, threads, kernel set, CPU model and flags, date, timing protocol,
noise floor). Keys are never joined strings and tables are never pickled.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from latency_models.errors import CostModelError


@dataclass(frozen=True, kw_only=True, order=True)
class LayerKey:
    """What a latency depends on: op kind, input shape, output channels, window, stride and precision.

    ``op`` is a layer op (``conv``, ``dwconv``, ``dense``, ``avg_pool``, ``max_pool``, ``global_avg_pool``,
    ``add``, ``flatten``) with its fused activation in ``act``, or a whole-model term (``invoke``, ``quantize``,
    ``dequantize``, ``requantize``, ``partition``). Spatial sizes are 1 for dense layers and terms.
    """

    op: str
    height: int = 1
    width: int = 1
    in_channels: int = 1
    out_channels: int = 1
    kernel: int = 1
    stride: int = 1
    act: str = ""
    weight_bits: int = 32
    activation_bits: int = 32

    def __post_init__(self) -> None:
        sizes = (self.height, self.width, self.in_channels, self.out_channels, self.kernel, self.stride)
        if not self.op or any(not isinstance(v, int) or v < 1 for v in sizes):
            raise CostModelError(f"a layer key needs an op and positive integer sizes, got {self}")

    def distance(self, other: LayerKey) -> float:
        """How far apart two keys are (for naming the nearest entries of a missing key)."""
        if self.op != other.op:
            return math.inf
        logs = [
            abs(math.log2(getattr(self, name)) - math.log2(getattr(other, name)))
            for name in ("height", "width", "in_channels", "out_channels", "kernel", "stride")
        ]
        precision = (self.weight_bits != other.weight_bits) + (self.activation_bits != other.activation_bits)
        return sum(logs) + 4.0 * precision + (self.act != other.act)

    def describe(self) -> str:
        """Compact text for messages: ``conv 8x8x16->32 k3 s1 relu w8a8``."""
        act = f" {self.act}" if self.act else ""
        return (
            f"{self.op} {self.height}x{self.width}x{self.in_channels}->{self.out_channels} "
            f"k{self.kernel} s{self.stride}{act} w{self.weight_bits}a{self.activation_bits}"
        )


KEY_FIELDS = tuple(f.name for f in fields(LayerKey))


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """Latency of one key: median and quartiles in ms over ``runs`` kept invokes (outliers rejected)."""

    median_ms: float
    p25_ms: float
    p75_ms: float
    runs: int
    rejected: int = 0

    def __post_init__(self) -> None:
        values = (self.median_ms, self.p25_ms, self.p75_ms)
        if not all(math.isfinite(v) and v >= 0 for v in values) or self.runs < 1 or self.rejected < 0:
            raise CostModelError(f"a measurement needs finite latencies >= 0 and runs >= 1, got {self}")
        if not self.p25_ms <= self.median_ms <= self.p75_ms:
            raise CostModelError(f"quartiles out of order in {self}")


MEASUREMENT_FIELDS = tuple(f.name for f in fields(Measurement))


@dataclass(frozen=True, kw_only=True)
class LatencyTable:
    """Measured latencies of one device and kernel set, with the table's provenance."""

    device: str
    kernel_set: str
    entries: dict[LayerKey, Measurement]
    provenance: dict[str, Any] = field(default_factory=dict)

    def lookup(self, key: LayerKey) -> Measurement:
        """The measurement of ``key``; a missing key is named with its nearest entries."""
        try:
            return self.entries[key]
        except KeyError:
            raise CostModelError(self._missing(key)) from None

    def get(self, key: LayerKey) -> Measurement | None:
        """The measurement of ``key``, or None when it was not measured."""
        return self.entries.get(key)

    def nearest(self, key: LayerKey, count: int = 3) -> list[LayerKey]:
        """The ``count`` entries closest to ``key`` (same op first)."""
        return sorted(self.entries, key=lambda other: (key.distance(other), other))[:count]

    def _missing(self, key: LayerKey) -> str:
        near = [k for k in self.nearest(key) if key.distance(k) < math.inf]
        hint = "; nearest: " + ", ".join(k.describe() for k in near) if near else f"; no {key.op} entry at all"
        return (
            f"{self.device} ({self.kernel_set}) table has no entry for {key.describe()}{hint}; "
            f"profile it with `nas profile --device {self.device}`"
        )


def table_to_csv(table: LatencyTable) -> str:
    """The CSV text of a table's rows, sorted by key (stable, diff-friendly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*KEY_FIELDS, *MEASUREMENT_FIELDS])
    for key in sorted(table.entries):
        row = {**asdict(key), **asdict(table.entries[key])}
        writer.writerow([_cell(row[name]) for name in (*KEY_FIELDS, *MEASUREMENT_FIELDS)])
    return out.getvalue()


def _cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: floats round-trip exactly


def save_table(table: LatencyTable, path: Path) -> None:
    """Writes ``path`` (CSV) and ``path.json`` (device, kernel set, provenance) atomically."""
    from latency_models.files import atomic_write_text

    sidecar = {"device": table.device, "kernel_set": table.kernel_set, "provenance": table.provenance}
    atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=1, sort_keys=True))
    atomic_write_text(path, table_to_csv(table))


def load_table(path: Path) -> LatencyTable:
    """Reads a table written by ``save_table``; malformed rows are named with their line number."""
    sidecar_path = path.with_suffix(".json")
    try:
        sidecar = json.loads(sidecar_path.read_text())
        text = path.read_text()
    except FileNotFoundError as err:
        raise CostModelError(f"latency table file {err.filename} is missing; profile the device again") from None
    except (OSError, json.JSONDecodeError) as err:
        raise CostModelError(f"latency table {sidecar_path.name} is unreadable ({err}); profile again") from None
    entries = parse_rows(text, path.name)
    return LatencyTable(
        device=str(sidecar.get("device", "")),
        kernel_set=str(sidecar.get("kernel_set", "")),
        entries=entries,
        provenance=dict(sidecar.get("provenance", {})),
    )


def parse_rows(text: str, source: str) -> dict[LayerKey, Measurement]:
    """Table rows from CSV text: every row validated, duplicates refused."""
    reader = csv.DictReader(io.StringIO(text))
    missing = set(KEY_FIELDS + MEASUREMENT_FIELDS) - set(reader.fieldnames or ())
    if missing:
        raise CostModelError(f"{source}: missing columns {sorted(missing)}")
    entries: dict[LayerKey, Measurement] = {}
    for line, row in enumerate(reader, start=2):
        key, measurement = _parse_row(row, f"{source} line {line}")
        if key in entries:
            raise CostModelError(f"{source} line {line}: duplicate entry {key.describe()}")
        entries[key] = measurement
    return entries


def _parse_row(row: dict[str, str], where: str) -> tuple[LayerKey, Measurement]:
    try:
        key = LayerKey(
            op=row["op"],
            act=row["act"] or "",
            **{name: int(row[name]) for name in KEY_FIELDS if name not in ("op", "act")},
        )
        measurement = Measurement(
            median_ms=float(row["median_ms"]),
            p25_ms=float(row["p25_ms"]),
            p75_ms=float(row["p75_ms"]),
            runs=int(row["runs"]),
            rejected=int(row["rejected"]),
        )
    except (TypeError, ValueError) as err:
        raise CostModelError(f"{where}: {err}") from None
    return key, measurement
