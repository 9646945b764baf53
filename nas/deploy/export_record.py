"""An export's verification record, typed: what ``nas export`` writes to ``results/<study>/verification.json``
and what reports, model cards, selection, calibration and the console read.

The file is one JSON object keyed ``trial-N``. This module is the only place that knows a record's keys: the
export builds an ``ExportRecord`` and writes ``to_dict()``, every reader goes through ``read_records``. The JSON
form is unchanged from the dicts studies already hold; parts that older records lack (quality warning, device
figures, runtime memory, cost check) read as absent. A damaged file, or a damaged record in it, is refused in
one line and never overwritten, because it holds other trials' records.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from latency_models.errors import CostModelError
from latency_models.runtimes.litert.memory_plan import TensorMemory
from latency_models.table import Measurement
from nas.checkpoint import atomic_write_bytes
from nas.errors import ConfigError
from nas.paths import verification_of
from nas.runtime.verify import FLIPS_SHOWN, AccuracyBar, Flip, KernelCheck

_FILE_FIX = "move it away and export the trials again"
_RECORD_FIX = "move the file away and export the trials again"
_REQUIRED = (
    "trial",
    "dataset",
    "model",
    "passed",
    "candidate",
    "file_bytes",
    "gzip_bytes",
    "predicted",
    "jax_test_accuracy",
    "kernels",
    "latency_provenance",
)


@dataclass(frozen=True, kw_only=True)
class KernelResult:
    """One kernel set's check of the exported file, as recorded (``passed`` as judged then, not re-judged)."""

    delegate: str
    accuracy: float
    agreement: float | None  # top-1 agreement with the JAX model (None without its predictions)
    kernel_agreement: float | None = None  # agreement with the first kernel set (None for the first)
    bar: AccuracyBar | None = None  # what accuracy was judged against (None: not judged)
    latency: Measurement | None = None  # measured on the exporting host (None: not timed)
    # How many of ``examples`` predictions flipped, how many may (``nas.runtime.verify.allowed_flips``), and the
    # first of them (None: a record from before flips were counted).
    examples: int | None = None
    flipped: int | None = None
    allowed_flips: int | None = None
    flips: tuple[Flip, ...] = ()
    passed: bool

    @classmethod
    def of(cls, check: KernelCheck) -> KernelResult:
        """The record of a check just run."""
        return cls(
            delegate=check.delegate,
            accuracy=check.accuracy,
            agreement=check.agreement,
            kernel_agreement=check.kernel_agreement,
            bar=check.bar,
            latency=check.latency,
            examples=check.examples,
            flipped=len(check.flips),
            allowed_flips=check.allowed_flips,
            flips=check.flips[:FLIPS_SHOWN],
            passed=check.passed,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the check's fields, then whether it passed."""
        return {
            "delegate": self.delegate,
            "accuracy": self.accuracy,
            "agreement": self.agreement,
            "kernel_agreement": self.kernel_agreement,
            "bar": None if self.bar is None else asdict(self.bar),
            "latency": None if self.latency is None else asdict(self.latency),
            **self._flip_fields(),
            "passed": self.passed,
        }

    def _flip_fields(self) -> dict[str, Any]:
        """The flip counts and examples, where the check counted them (a record from before has none)."""
        if self.flipped is None:
            return {}
        return {
            "examples": self.examples,
            "flipped": self.flipped,
            "allowed_flips": self.allowed_flips,
            "flips": [asdict(flip) for flip in self.flips],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> KernelResult:
        """Inverse of ``to_dict``."""
        bar, latency = raw.get("bar"), raw.get("latency")
        return cls(
            delegate=raw["delegate"],
            accuracy=raw["accuracy"],
            agreement=raw.get("agreement"),
            kernel_agreement=raw.get("kernel_agreement"),
            bar=None if bar is None else AccuracyBar(**bar),
            # Records before 2026-12-02 kept percentiles by another timing protocol (p50_ms, ...): not comparable
            # with the cost tables' median, so they read as not timed.
            latency=Measurement(**latency) if isinstance(latency, dict) and "median_ms" in latency else None,
            examples=raw.get("examples"),
            flipped=raw.get("flipped"),
            allowed_flips=raw.get("allowed_flips"),
            flips=tuple(Flip(**flip) for flip in raw.get("flips", ())),
            passed=bool(raw["passed"]),
        )

    def describe_flips(self) -> str:
        """``3 of 359 predictions flipped (allowed 4): #12 (class 3): 3 -> 8, ...`` (empty for an old record)."""
        if self.flipped is None or self.examples is None:
            return ""
        shown = ", ".join(flip.describe() for flip in self.flips)
        more = f", and {self.flipped - len(self.flips)} more" if self.flipped > len(self.flips) else ""
        listed = f": {shown}{more}" if shown else ""
        return f"{self.flipped} of {self.examples} predictions flipped (allowed {self.allowed_flips}){listed}"


@dataclass(frozen=True, kw_only=True)
class DeviceRuntimeCheck:
    """The exported file run in the runtime its device uses, where that runtime runs here standing in for the
    device's kernels (TFLite Micro for a microcontroller): parity with the JAX model and the memory it needs,
    never a latency (its kernels here are not the device's)."""

    runtime: str  # the runtime, its version and its kernels here
    check: KernelResult
    memory: TensorMemory

    @property
    def passed(self) -> bool:
        """Whether its parity check passed."""
        return self.check.passed

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"runtime": self.runtime, "check": self.check.to_dict(), "memory": asdict(self.memory)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DeviceRuntimeCheck:
        """Inverse of ``to_dict``."""
        return cls(
            runtime=raw["runtime"], check=KernelResult.from_dict(raw["check"]), memory=TensorMemory(**raw["memory"])
        )


@dataclass(frozen=True, kw_only=True)
class DeviceCompile:
    """The exported file compiled by its device's own compiler (Vela for an Ethos-U NPU), written beside it with
    the compiler's per-layer report; its figures are the compiler's estimate, never a measurement."""

    compiler: str  # how its figures are labelled: estimated by Vela 5.2.0 (<system config>, <memory mode>)
    model: str  # the compiled file (the model with the NPU's command stream)
    report: str  # the compiler's per-layer CSV
    latency_ms: float  # the NPU's time in the compiler's estimate (the CPU side not included)
    npu_operators: int
    cpu_operators: tuple[str, ...]  # the operators it leaves to the system's CPU

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {**asdict(self), "cpu_operators": list(self.cpu_operators)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DeviceCompile:
        """Inverse of ``to_dict``."""
        return cls(**{**raw, "cpu_operators": tuple(raw["cpu_operators"])})


@dataclass(frozen=True, kw_only=True)
class PredictedSize:
    """The size the trial predicted for its constants, beside the file's real size."""

    stored_bytes: float | None
    compressed_bytes: float | None
    provenance: str = "exact size accounting of the constants (graph structure not counted)"


@dataclass(frozen=True, kw_only=True)
class DeviceFigure:
    """One figure of the study's device, its provenance, and the margin under the device's limit if it has one."""

    value: float
    provenance: str
    limit: float | None = None
    margin_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (limit and margin only where the device has a limit)."""
        limit = {} if self.limit is None else {"limit": self.limit, "margin_pct": self.margin_pct}
        return {"value": self.value, "provenance": self.provenance, **limit}


@dataclass(frozen=True, kw_only=True)
class DeviceFigures:
    """The study device's own figures for the exported trial (cost figure name -> figure)."""

    device: str
    figures: dict[str, DeviceFigure]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"device": self.device, "figures": {name: f.to_dict() for name, f in self.figures.items()}}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DeviceFigures:
        """Inverse of ``to_dict``."""
        return cls(device=raw["device"], figures={n: DeviceFigure(**f) for n, f in raw["figures"].items()})


@dataclass(frozen=True, kw_only=True)
class LatencyCheck:
    """One kernel set's latency on this host: the host cost model's prediction against the measured median."""

    predicted_ms: float
    provenance: str
    measured_ms: float
    error_pct: float


@dataclass(frozen=True, kw_only=True)
class EnergyCheck:
    """Predicted energy per inference, and the RAPL measurement where the machine has a power counter."""

    predicted: float
    provenance: str
    measured: float | None
    measured_note: str


@dataclass(frozen=True, kw_only=True)
class Compared:
    """A predicted figure beside the one measured (bytes)."""

    predicted: int
    measured: int


@dataclass(frozen=True, kw_only=True)
class HostCostCheck:
    """The exporting host's cost model against measurements of the file, per kernel set."""

    device: str
    cpu: dict[str, Any] | None  # the measuring CPU (None in records from before it was kept)
    latency: dict[str, LatencyCheck]
    energy_mj: EnergyCheck | None
    ram_bytes: Compared
    flash_bytes: Compared
    protocol: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        stored = {
            "device": self.device,
            "cpu": self.cpu,
            "latency": {kernels: asdict(check) for kernels, check in self.latency.items()},
            "energy_mj": None if self.energy_mj is None else asdict(self.energy_mj),
            "ram_bytes": asdict(self.ram_bytes),
            "flash_bytes": asdict(self.flash_bytes),
            "protocol": self.protocol,
        }
        return _without_absent(stored, ("cpu", "energy_mj"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HostCostCheck:
        """Inverse of ``to_dict``."""
        energy = raw.get("energy_mj")
        return cls(
            device=raw["device"],
            cpu=raw.get("cpu"),
            latency={kernels: LatencyCheck(**check) for kernels, check in raw["latency"].items()},
            energy_mj=None if energy is None else EnergyCheck(**energy),
            ram_bytes=Compared(**raw["ram_bytes"]),
            flash_bytes=Compared(**raw["flash_bytes"]),
            protocol=dict(raw["protocol"]),
        )


@dataclass(frozen=True, kw_only=True)
class SkippedCostCheck:
    """No cost check: this host has no cost table to compare with, and why."""

    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"skipped": self.reason}


CostCheck = HostCostCheck | SkippedCostCheck


@dataclass(frozen=True, kw_only=True)
class Divergence:
    """Where a failed export parts from its JAX model: every layer's difference and the first that diverges."""

    layers: tuple[dict[str, Any], ...]  # layer, max_abs_diff, step, dtype, steps (nas.deploy.layer_diff)
    first_layer: str | None


@dataclass(frozen=True, kw_only=True)
class ExportRecord:
    """One exported trial: its file, its checks in LiteRT, and its figures predicted and measured."""

    trial: int
    dataset: str
    model: str  # the .tflite path as written
    passed: bool
    candidate: dict[str, Any]  # search_spaces.space.Candidate.to_dict()
    file_bytes: int
    gzip_bytes: int
    predicted: PredictedSize
    jax_test_accuracy: float
    quality_warning: str | None = None  # nas.analysis.quality: far below the uncompressed model
    kernels: tuple[KernelResult, ...]
    device_figures: DeviceFigures | None = None  # None when the study costed no device figure
    latency_provenance: str
    runtime_memory: TensorMemory | None = None
    cost_check: CostCheck | None = None
    divergence: Divergence | None = None  # only for a failed export
    device_runtime: DeviceRuntimeCheck | None = None  # only where a runtime stands in for the device's here
    device_compile: DeviceCompile | None = None  # only where the device's own compiler runs here (Vela)

    @property
    def key(self) -> str:
        """Its key in the verification file."""
        return f"trial-{self.trial}"

    @property
    def host_check(self) -> HostCostCheck | None:
        """The host cost check, when one ran (no host table: skipped; older records: absent)."""
        return self.cost_check if isinstance(self.cost_check, HostCostCheck) else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``verification.json``."""
        stored = {
            "trial": self.trial,
            "dataset": self.dataset,
            "model": self.model,
            "passed": self.passed,
            "candidate": self.candidate,
            "file_bytes": self.file_bytes,
            "gzip_bytes": self.gzip_bytes,
            "predicted": asdict(self.predicted),
            "jax_test_accuracy": self.jax_test_accuracy,
            "quality_warning": self.quality_warning,
            "kernels": [kernel.to_dict() for kernel in self.kernels],
            "device_figures": None if self.device_figures is None else self.device_figures.to_dict(),
            "latency_provenance": self.latency_provenance,
            "runtime_memory": None if self.runtime_memory is None else asdict(self.runtime_memory),
            "cost_check": None if self.cost_check is None else self.cost_check.to_dict(),
            "device_runtime": None if self.device_runtime is None else self.device_runtime.to_dict(),
            "device_compile": None if self.device_compile is None else self.device_compile.to_dict(),
        }
        stored = _without_absent(stored, ("runtime_memory", "cost_check", "device_runtime", "device_compile"))
        if self.divergence is not None:
            stored |= {"layers": list(self.divergence.layers), "first_divergent_layer": self.divergence.first_layer}
        return stored

    @classmethod
    def from_dict(cls, raw: Any, *, where: str = "an export record") -> ExportRecord:
        """Inverse of ``to_dict``; a record that is not one is refused in one line naming ``where`` and the fix."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} is not a JSON object (got {type(raw).__name__}); {_RECORD_FIX}")
        missing = [key for key in _REQUIRED if key not in raw]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}; {_RECORD_FIX}")
        try:
            return cls._parts(raw)
        except (KeyError, TypeError, ValueError, AttributeError, CostModelError) as err:
            reason = f"missing {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
            raise ConfigError(f"{where} has a malformed part ({reason}); {_RECORD_FIX}") from None

    @classmethod
    def _parts(cls, raw: dict[str, Any]) -> ExportRecord:
        device, memory = raw.get("device_figures"), raw.get("runtime_memory")
        return cls(
            trial=int(raw["trial"]),
            dataset=raw["dataset"],
            model=raw["model"],
            passed=bool(raw["passed"]),
            candidate=dict(raw["candidate"]),
            file_bytes=raw["file_bytes"],
            gzip_bytes=raw["gzip_bytes"],
            predicted=PredictedSize(**raw["predicted"]),
            jax_test_accuracy=float(raw["jax_test_accuracy"]),
            quality_warning=raw.get("quality_warning"),
            kernels=tuple(KernelResult.from_dict(kernel) for kernel in raw["kernels"]),
            device_figures=None if device is None else DeviceFigures.from_dict(device),
            latency_provenance=raw["latency_provenance"],
            runtime_memory=None if memory is None else TensorMemory(**memory),
            cost_check=_cost_check(raw.get("cost_check")),
            divergence=_divergence(raw),
            device_runtime=None
            if raw.get("device_runtime") is None
            else DeviceRuntimeCheck.from_dict(raw["device_runtime"]),
            device_compile=None
            if raw.get("device_compile") is None
            else DeviceCompile.from_dict(raw["device_compile"]),
        )


def _divergence(raw: dict[str, Any]) -> Divergence | None:
    if "layers" not in raw:  # passed: no per-layer comparison was made
        return None
    return Divergence(layers=tuple(raw["layers"]), first_layer=raw.get("first_divergent_layer"))


def _without_absent(stored: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """``stored`` without the optional keys that are None: records that predate a part have no key for it."""
    return {key: value for key, value in stored.items() if key not in optional or value is not None}


def _cost_check(raw: dict[str, Any] | None) -> CostCheck | None:
    if raw is None:
        return None
    if "skipped" in raw:
        return SkippedCostCheck(reason=raw["skipped"])
    return HostCostCheck.from_dict(raw)


def read_records(path: Path) -> dict[str, ExportRecord]:
    """Every record of a verification file, by key (``trial-N``); a damaged file or record is refused."""
    return {key: ExportRecord.from_dict(raw, where=f"{key} in {path}") for key, raw in _stored(path).items()}


def record_of_model(model: Path) -> ExportRecord | None:
    """The record of an exported ``.tflite`` in its study's verification file (None: exported elsewhere)."""
    verification = verification_of(model)
    if not verification.exists():
        return None
    for record in read_records(verification).values():
        if Path(record.model).resolve() == model.resolve():
            return record
    return None


def merge_record(path: Path, record: ExportRecord) -> None:
    """Writes ``record`` into the verification file ``path`` beside the other trials' records."""
    stored = _stored(path) if path.exists() else {}
    for key, raw in stored.items():  # a damaged record is refused before the file is rewritten
        ExportRecord.from_dict(raw, where=f"{key} in {path}")
    # The others are written back as they were read, not re-serialized: nothing a newer reader does not know
    # (or an older record holds in another form) is lost.
    stored[record.key] = record.to_dict()
    atomic_write_bytes(path, lambda handle: handle.write(json.dumps(stored, indent=1).encode()))


def _stored(path: Path) -> dict[str, Any]:
    """The file's JSON object; one that is not (cut short, edited by hand) is refused, never overwritten."""
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} is damaged ({err}); {_FILE_FIX}") from None
    if not isinstance(records, dict):
        raise ConfigError(f"{path} is damaged (not a JSON object); {_FILE_FIX}")
    return records
