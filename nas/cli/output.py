"""What several commands print: the front table, export checks, device figures, calibration lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from latency_models.calibration import Calibration
    from latency_models.runtimes.litert.memory_plan import TensorMemory
    from latency_models.table import Measurement
    from nas.deploy.export_record import CostCheck, DeviceCompile, DeviceFigures, DeviceRuntimeCheck, KernelResult


def calibration_line(calibration: Calibration) -> str:
    """A calibration in one line: what it is, its points and its fit error."""
    error = calibration.fit_error()
    return (
        f"{calibration.describe()}; {len(calibration.points)} reference models "
        f"({error['within_10pct']:.0%} within +-10% after calibration, MAPE {error['mape']:.1%})"
    )


def front_table(front, objectives: tuple[str, ...]) -> str:
    """The front in display units: objectives first, then the other device figures the trials recorded."""
    from latency_models.cost import headline
    from nas.objectives import DEVICE_TERMS, term

    extra = [n for n in ("stored_bytes", *DEVICE_TERMS) if n not in objectives and front.get(n) is not None]
    names = [n for n in (*objectives, *extra) if n in front.columns and front[n].notna().any()]
    shown = front[["number", *(["test_accuracy"] if "test_accuracy" in front.columns else []), *names]].copy()
    renamed = {}
    for name in names:
        figure = term(name)
        if name != "accuracy":
            shown[name] = shown[name] * figure.scale
            provenance = front.get(f"{name}_provenance")
            labels = [] if provenance is None else sorted({headline(str(v)) for v in provenance.dropna()})
            kind = f", {'/'.join(labels)}" if labels else ""
            renamed[name] = f"{name.rsplit('_', 1)[0]} ({figure.unit}{kind})"
    if "worst_class_drop" in front.columns:  # the per-class audit on the test split
        pairs = zip(front["worst_class"], front["worst_class_drop"], strict=True)
        shown["worst class (change)"] = [f"{label} ({-drop:+.1%})" for label, drop in pairs]
        shown["flagged"] = front["flagged_classes"].fillna("").replace("", "-")
    if "robust_accuracy" in front.columns:  # mean accuracy on degraded test inputs (robustness.json)
        shown["degraded acc"] = front["robust_accuracy"]
    return shown.rename(columns=renamed).to_string(index=False, float_format=lambda v: f"{v:.4g}")


def status(check: KernelResult) -> str:
    """ok, FAILED, or why the accuracy was not judged."""
    if check.passed:
        return "ok"
    return "accuracy not judged" if check.bar is None else "FAILED"


def print_checks(label: str, kernels: Sequence[KernelResult], memory: TensorMemory | None) -> None:
    """Each kernel set's accuracy, agreement and measured latency, and the runtime tensor memory."""
    for check in kernels:
        agreement = "n/a" if check.agreement is None else f"{check.agreement:.4f}"
        if check.agreement is None and check.kernel_agreement is not None:
            agreement = f"{check.kernel_agreement:.4f} with xnnpack"
        print(
            f"{label} [{check.delegate:7s}] accuracy {check.accuracy:.4f} agreement {agreement} "
            f"latency {_latency(check.latency)} {status(check)}"
        )
        if check.flipped:
            print(f"{label} [{check.delegate:7s}] {check.describe_flips()}")
    if memory is not None:
        print(
            f"{label} runtime tensor memory {memory.runtime_bytes} B "
            f"(largest tensor {memory.largest_tensor_bytes} B; {memory.provenance})"
        )


def _latency(latency: Measurement | None) -> str:
    """A measured latency with its quartiles, in microseconds."""
    if latency is None:
        return "not timed"
    quartiles = f"{latency.p25_ms * 1000:.2f}-{latency.p75_ms * 1000:.2f}"
    return f"{latency.median_ms * 1000:.2f} us (quartiles {quartiles}, measured)"


def print_device_runtime(label: str, check: DeviceRuntimeCheck | None) -> None:
    """The export's run in the runtime standing in for its device's (parity and memory, never timed)."""
    if check is None:
        return
    result = check.check
    agreement = "n/a" if result.agreement is None else f"{result.agreement:.4f}"
    print(
        f"{label} in {check.runtime}: accuracy {result.accuracy:.4f} agreement {agreement} "
        f"{status(result)}; tensor arena {check.memory.runtime_bytes} B ({check.memory.provenance})"
    )
    if result.flipped:
        print(f"{label} in {check.runtime}: {result.describe_flips()}")


def print_device_compile(label: str, compiled: DeviceCompile | None) -> None:
    """The export compiled by its device's own compiler (Vela): where the files are, and what it left to the CPU."""
    if compiled is None:
        return
    cpu = ", ".join(compiled.cpu_operators) or "none"
    print(
        f"{label} compiled for the NPU: {compiled.model} (per-layer report {compiled.report}); "
        f"{compiled.npu_operators} operators on the NPU, {compiled.latency_ms * 1000:.3g} us ({compiled.compiler}); "
        f"left to the CPU: {cpu}"
    )


def print_device_figures(label: str, device: DeviceFigures | None) -> None:
    """The study device's own figures with provenance, and the margin under its memory limits."""
    if device is None:
        return
    figures = device.figures
    parts = [
        f"latency {figures['latency_ms'].value * 1000:.3g} us ({figures['latency_ms'].provenance})",
        f"energy {figures['energy_mj'].value:.3g} mJ ({figures['energy_mj'].provenance})",
    ]
    for name, title in (("ram_bytes", "RAM"), ("flash_bytes", "flash")):
        figure = figures[name]
        limit = "" if figure.limit is None else f" of {figure.limit} B, margin {figure.margin_pct:g}%"
        parts.append(f"{title} {figure.value:.0f} B{limit} ({figure.provenance})")
    print(f"{label} on {device.device}: " + ", ".join(parts))


def print_cost_check(label: str, check: CostCheck | None) -> None:
    """This host's predicted latency against the measured figure, per kernel set; RAM and flash."""
    from nas.deploy.export_record import SkippedCostCheck

    if check is None:  # a record from before cost checks: nothing to print
        return
    if isinstance(check, SkippedCostCheck):
        print(f"{label} predicted vs measured: skipped ({check.reason})")
        return
    for kernels, figures in check.latency.items():
        print(
            f"{label} [{kernels:7s}] latency predicted {figures.predicted_ms * 1000:.2f} us "
            f"({figures.provenance}), {figures.error_pct:+.1f}% off the measured figure"
        )
    ram, flash = check.ram_bytes, check.flash_bytes
    print(
        f"{label} RAM predicted {ram.predicted} B vs measured {ram.measured} B; "
        f"flash predicted {flash.predicted} B vs file {flash.measured} B"
    )
