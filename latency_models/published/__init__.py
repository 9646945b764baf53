"""Published measurements to calibrate device profiles on: MLPerf Tiny closed-division results (v0.7 to v1.2).

``mlperf_tiny.csv`` beside this file is generated, not typed in: benchmarks/collect_mlperf_tiny.py reads it from
snapshots of the mlcommons/tiny_results_v* repositories, and ``mlperf_tiny.json`` records from which commits,
what was left out and why (MLPerf Tiny v1.3 by design: it is kept for an independent check). Every row names the
results file its numbers come from. :func:`load_published` validates each row and refuses a bad one in one line
naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from latency_models.errors import CostModelError

PUBLISHED_DIR = Path(__file__).resolve().parent
MLPERF_TINY_CSV = PUBLISHED_DIR / "mlperf_tiny.csv"

# The MLPerf Tiny benchmarks and the reference model each one runs (closed division), with its input.
BENCHMARK_MODELS = {
    "ic": ("ResNet-8", "32x32x3"),
    "kws": ("DS-CNN", "49x10x1"),
    "vww": ("MobileNetV1 0.25", "96x96x3"),
    "ad": ("FC autoencoder", "640"),
}
PRECISIONS = ("int8", "float32", "vendor")
# A clock outside this range is in the wrong unit (Hz or kHz given as MHz), not a real part: the slowest boards
# in the set run at 20 MHz, a phone core at a few GHz.
CLOCK_RANGE_MHZ = (1.0, 10_000.0)
Fail = Callable[[str, str], "PublishedDataError"]  # (field, problem) -> the one-line error for the current row
REQUIRED = ("version", "submitter", "system", "board", "benchmark", "precision", "latency_ms", "source")


class PublishedDataError(CostModelError):
    """A published-measurements file is missing, or one of its rows is malformed."""


@dataclass(frozen=True, kw_only=True)
class PublishedPoint:
    """One published measurement: a model's latency (and energy, where measured) on a board with a software stack.

    ``latency_ms`` is the performance-mode median latency of one inference; ``energy_uj`` the energy-mode median
    energy of one inference (None when the submitter did not measure energy). ``source`` cites the results file
    (repository@commit:path), ``line`` is the row's line in the CSV."""

    version: str
    submitter: str
    system: str
    board: str
    processor: str
    core: str
    accelerator: str
    clock_mhz: float | None
    memory: str
    stack: str
    stack_version: str
    benchmark: str
    model: str
    input_shape: str
    precision: str
    latency_ms: float
    energy_uj: float | None
    source: str
    energy_source: str
    system_source: str
    notes: str
    line: int


def load_published(path: Path = MLPERF_TINY_CSV) -> list[PublishedPoint]:
    """Every row of a published-measurements CSV as a validated :class:`PublishedPoint`, in file order.

    Raises PublishedDataError naming the file, line and field of the first bad row (or the missing columns)."""
    if not path.is_file():
        raise PublishedDataError(f"{path}: no such published-measurements file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED if column not in (reader.fieldnames or ())]
        if missing:
            raise PublishedDataError(f"{path}:1: missing column(s) {', '.join(missing)}")
        points = [_point(row, path, reader.line_num) for row in reader]
    _refuse_duplicates(points, path)
    return points


def _point(row: dict[str, str], path: Path, line: int) -> PublishedPoint:
    def fail(field: str, problem: str) -> PublishedDataError:
        return PublishedDataError(f"{path}:{line}: {field}: {problem}")

    text = {key: (value or "").strip() for key, value in row.items() if key is not None}
    for field in REQUIRED:
        if not text.get(field):
            raise fail(field, "empty")
    if not re.fullmatch(r"\d+\.\d+", text["version"]):
        raise fail("version", f"{text['version']!r} is not a version like 1.0")
    benchmark = text["benchmark"]
    if benchmark not in BENCHMARK_MODELS:
        raise fail("benchmark", f"unknown benchmark {benchmark!r} (known: {', '.join(BENCHMARK_MODELS)})")
    if text["precision"] not in PRECISIONS:
        raise fail("precision", f"{text['precision']!r} is not one of {', '.join(PRECISIONS)}")
    model, shape = BENCHMARK_MODELS[benchmark]
    if text.get("model", model) != model or text.get("input_shape", shape) != shape:
        raise fail("model", f"{text.get('model')} {text.get('input_shape')} is not {benchmark}'s {model} {shape}")
    return PublishedPoint(
        version=text["version"],
        submitter=text["submitter"],
        system=text["system"],
        board=text["board"],
        processor=text.get("processor", ""),
        core=text.get("core", ""),
        accelerator=text.get("accelerator", ""),
        clock_mhz=_clock(text.get("clock_mhz", ""), fail),
        memory=text.get("memory", ""),
        stack=text.get("stack", ""),
        stack_version=text.get("stack_version", ""),
        benchmark=benchmark,
        model=model,
        input_shape=shape,
        precision=text["precision"],
        latency_ms=_positive(text["latency_ms"], "latency_ms", fail),
        energy_uj=_positive(text["energy_uj"], "energy_uj", fail) if text.get("energy_uj") else None,
        source=text["source"],
        energy_source=text.get("energy_source", ""),
        system_source=text.get("system_source", ""),
        notes=text.get("notes", ""),
        line=line,
    )


def _positive(value: str, field: str, fail: Fail) -> float:
    try:
        number = float(value)
    except ValueError:
        raise fail(field, f"{value!r} is not a number") from None
    if not (math.isfinite(number) and number > 0):
        raise fail(field, f"{value} is not a positive finite number")
    return number


def _clock(value: str, fail: Fail) -> float | None:
    if not value:
        return None  # not stated by the submitter (a phone SoC's several clocks, or none given)
    clock = _positive(value, "clock_mhz", fail)
    low, high = CLOCK_RANGE_MHZ
    if not low <= clock <= high:
        raise fail("clock_mhz", f"implausible clock {value} MHz (expected {low:g} to {high:g}: a clock in Hz or kHz?)")
    return clock


def _refuse_duplicates(points: list[PublishedPoint], path: Path) -> None:
    """One row per version x submitter x system x benchmark: a second one would weigh that result twice."""
    seen: dict[tuple[str, str, str, str], int] = {}
    for point in points:
        key = (point.version, point.submitter, point.system, point.benchmark)
        if key in seen:
            raise PublishedDataError(f"{path}:{point.line}: benchmark: {' '.join(key)} repeats line {seen[key]}")
        seen[key] = point.line
