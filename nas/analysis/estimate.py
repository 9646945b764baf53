"""``nas estimate``: the predicted cost of one candidate on a device, per layer and whole-model term, and in total.

The model is a model spec at a uniform precision (``w8a8``), a study's trial, or an existing ``.tflite`` file
(its keys read from the flatbuffer); the device is any profile (measured or analytic). Every figure is printed with its
provenance, so an estimate is never mistaken for a measurement. A file for a device whose runtime is a compiler that
estimates (Vela for an Ethos-U NPU) is costed by that compiler: its latency, memory and where each operator runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from latency_models.cost import Cost, Figure
from latency_models.device import load_device, this_host
from latency_models.layered import LayeredCostModel
from latency_models.registry import cost_model
from latency_models.runtimes import memory_runtime, runtime_estimating, runtime_for
from latency_models.runtimes.base import Runtime
from latency_models.runtimes.vela.report import AREA_NAMES, VelaEstimate
from latency_models.tflite_keys import FileKeys, file_keys, tensor_layers
from nas.analysis.rescore import study_graph
from nas.compress.float_regions import load_spec
from nas.errors import ConfigError
from nas.search.saved import SavedStudy
from nas.training.data import load_dataset
from search_spaces.graph import ModelGraph, analyze
from search_spaces.runtime_support import OPS
from search_spaces.space import Candidate
from search_spaces.techniques.precision import parse_precision


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """What was costed and its cost."""

    description: str
    cost: Cost
    kernel_set: str
    notes: tuple[str, ...] = ()  # lines printed after the totals


def estimate_spec(model: str, dataset: str, precision: str, device: str, kernel_set: str | None = None) -> Estimate:
    """The cost of ``model`` on ``dataset``'s input at a uniform ``precision`` (e.g. ``w8a8``)."""
    data = load_dataset(dataset)
    graph = analyze(load_spec(model), data.input_shape, data.num_classes)
    weight_bits, activation_bits = parse_precision(precision)
    candidate = Candidate.uniform(graph, weight_bits=weight_bits, activation_bits=activation_bits)
    costs = cost_model(device, kernel_set)
    unrunnable = [layer.split()[0] for layer in costs.device.unrunnable(graph, candidate)]
    if unrunnable:
        raise ConfigError(f"{device} does not run {precision} for {', '.join(unrunnable)}; pick another precision")
    description = f"{model} on {dataset} input {graph.input_shape}, uniform {precision}"
    return _estimate(description, graph, candidate, device, kernel_set)


def estimate_trial(
    study_name: str,
    number: int,
    *,
    results_dir: Path,
    storage: str | None,
    device: str | None,
    kernel_set: str | None,
) -> Estimate:
    """The cost of a study's trial (on the study's device unless ``device`` is given); a missing study is refused
    before any storage is opened (opening a SQLite file would create it)."""
    saved = SavedStudy.open(study_name, results_dir, storage)
    study, config = saved.study, saved.config
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials or trials[number].state != optuna.trial.TrialState.COMPLETE:
        raise ConfigError(f"trial {number} of {study_name!r} is not a finished trial")
    graph = study_graph(config)
    candidate = Candidate.from_dict(trials[number].user_attrs["candidate"])
    target = device or config.device
    return _estimate(f"trial {number} of {study_name}", graph, candidate, target, kernel_set or config.kernel_set)


def _estimate(
    description: str, graph: ModelGraph, candidate: Candidate, device: str, kernel_set: str | None
) -> Estimate:
    model = cost_model(device, kernel_set)
    unrunnable = model.device.unrunnable(graph, candidate)
    if unrunnable:  # a device's model need not cost what it cannot run (an NPU has no float rate)
        raise ConfigError(f"{device} does not run {', '.join(unrunnable)}; pick a trial at precisions it runs")
    return Estimate(description=description, cost=model.cost(graph, candidate), kernel_set=model.kernel_set)


def estimate_file(path: Path, device: str, kernel_set: str | None = None) -> Estimate:
    """The cost of an existing ``.tflite`` on ``device``: latency from its flatbuffer's keys, flash its size,
    RAM the arena LiteRT allocates for it here (measured for the host; for another device, the plan its
    runtime follows, as for any candidate)."""
    if not path.is_file():
        raise ConfigError(f"no model file {path}; pass the path of a .tflite")
    content = path.read_bytes()
    keys = file_keys(content)
    model = cost_model(device, kernel_set)
    compiler = runtime_estimating(model.device)
    if compiler is not None:
        return _compiled(path.name, content, keys, model, compiler)
    unrunnable = [
        f"{name} ({key.op} w{key.weight_bits}a{key.activation_bits})"
        for name, key in keys.layers
        if key.op in model.device.precisions and not model.device.runs(key.op, key.weight_bits, key.activation_bits)
    ]
    if unrunnable:
        raise ConfigError(f"{device} does not run {', '.join(unrunnable)}; export another precision for it")
    allocator = memory_runtime(model.device)  # TFLite Micro's arena for a microcontroller, else LiteRT's plan here
    memory = (allocator if allocator is not None and allocator.can("memory") else runtime_for(this_host())).memory_plan(
        content
    )
    here = model.device.measurable_here  # the interpreter's arena is this machine's: measured only for it
    cost = model.cost_of_parts(
        model.parts_of_keys(keys.layers, keys.boundaries),
        flash=Figure(value=float(len(content)), provenance="exact"),
        ram=Figure(value=float(memory.runtime_bytes), provenance="measured" if here else "exact"),
    )
    return Estimate(description=f"{path.name} ({len(keys.layers)} layers)", cost=cost, kernel_set=model.kernel_set)


def _compiled(file_name: str, content: bytes, keys: FileKeys, model: LayeredCostModel, compiler: Runtime) -> Estimate:
    """A file as the device's compiler estimates it (Vela): per operator on the NPU with its cycles, the CPU side
    (invoke, conversions) from the profile's analytic model; flash is the compiled file, RAM the SRAM of the plan."""
    device = model.device
    refused = [
        f"{name} ({key.op} w{key.weight_bits}a{key.activation_bits}: {support.note})"
        for name, key in keys.layers
        if key.op in OPS and not (support := compiler.support(key.op, key.weight_bits, key.activation_bits)).runs
    ]
    if refused:
        raise ConfigError(f"{device.name} cannot run {'; '.join(refused)}; export another precision for it")
    # The invoke, the conversions and the layers the CPU runs: the profile's analytic terms beside the estimate.
    on_cpu = set(compiler.cpu_layers(content, device))
    layers = [(name, key) for name, key in keys.layers if name in on_cpu]
    cpu_side = model.parts_of_keys(layers, compiler.cpu_conversions(keys.boundaries))
    cost = compiler.file_cost(content, device, cpu_side=cpu_side)
    report = compiler.estimate(content, device)  # kept by the runtime: not compiled again
    uncosted = sorted(on_cpu - {name for name, _ in layers})
    return Estimate(
        description=f"{file_name} ({len(report.layers)} operators)",
        cost=cost,
        kernel_set=model.kernel_set,
        notes=_compiled_notes(report, tensor_layers(content), uncosted),
    )


def _compiled_notes(report: VelaEstimate, names: dict[str, str], uncosted: list[str]) -> tuple[str, ...]:
    """Vela's cycles and memory, and the one line naming the operators it leaves to the CPU."""
    on_npu = len(report.layers) - len(report.cpu_layers)
    memory = ", ".join(
        f"{AREA_NAMES[area]} {used / 1024:.2f} KiB" for area, used in report.memory_bytes.items() if used
    )
    notes = [
        f"NPU ({report.accelerator} at {report.clock_hz / 1e6:g} MHz): {report.npu_cycles} cycles computing, "
        f"{report.total_cycles} in all with memory traffic; {on_npu} of {len(report.layers)} operators on the NPU",
        f"memory in Vela's plan: {memory or 'none'} (weights in {report.weights_area}, tensor arena in "
        f"{report.feature_map_area}); flash is the compiled file, RAM the SRAM of the plan "
        "(CPU operators' tensors are not in it)",
    ]
    if report.cpu_layers:
        cpu = ", ".join(report.cpu_operators(names))
        left_out = f"; not costed, no layer of this project's kinds: {', '.join(uncosted)}" if uncosted else ""
        notes.append(f"left to the CPU by Vela: {cpu} (costed above by the profile's analytic model{left_out})")
    return tuple(notes)


def format_estimate(estimate: Estimate) -> str:
    """The per-layer table and the totals, each figure with its provenance."""
    cost = estimate.cost
    lines = [f"{estimate.description} on {cost.device} ({estimate.kernel_set} kernels)"]
    lines.append(f"  {'layer / term':28s} {'latency (us)':>12s}  provenance        op")
    for part in cost.layers:
        label = part.latency_ms.kind_label
        lines.append(f"  {part.name:28s} {part.latency_ms.value * 1000:12.3f}  {label:16s}  {part.note}")
    lines.append(f"  {'total latency':28s} {cost.latency_ms.value * 1000:12.3f}  {cost.latency_ms.label}")
    lines.append(
        f"  energy {cost.energy_mj.value:.4g} mJ ({cost.energy_mj.label}); "
        f"flash {cost.flash_bytes.value / 1000:.2f} KB ({cost.flash_bytes.label}); "
        f"RAM {cost.ram_bytes.value / 1000:.2f} KB ({cost.ram_bytes.label})"
    )
    lines += [f"  {note}" for note in estimate.notes]
    return "\n".join(lines)


def estimate_across(estimator: Callable[[str], Estimate], devices: list[str]) -> list[tuple[str, Estimate | str]]:
    """``estimator`` run for each device: its estimate, or why the device cannot run the model."""
    rows: list[tuple[str, Estimate | str]] = []
    for device in devices:
        try:
            rows.append((device, estimator(device)))
        except ConfigError as err:
            rows.append((device, str(err)))
    return rows


def format_across(rows: list[tuple[str, Estimate | str]]) -> str:
    """One line per device: the four figures with their provenance, and whether the model fits its memory."""
    lines = [
        f"{'device':12s} {'kernels':9s} {'latency (us)':>22s} {'energy (uJ)':>22s} {'RAM (KB)':>16s} "
        f"{'flash (KB)':>16s}  fits"
    ]
    for device, result in rows:
        if isinstance(result, str):
            lines.append(f"{device:12s} cannot run it: {result}")
            continue
        cost, profile = result.cost, load_device(device)
        fits = all(
            limit is None or value <= limit
            for value, limit in (
                (cost.ram_bytes.value, profile.ram_bytes),
                (cost.flash_bytes.value, profile.flash_bytes),
            )
        )
        latency = _shown(cost.latency_ms, 1000)
        lines.append(
            f"{device:12s} {result.kernel_set:9s} {latency:>22s} "
            f"{_shown(cost.energy_mj, 1000):>22s} {_shown(cost.ram_bytes, 1e-3):>16s} "
            f"{_shown(cost.flash_bytes, 1e-3):>16s}  {'yes' if fits else 'NO'}"
        )
    return "\n".join(lines)


def _shown(figure: Figure, scale: float) -> str:
    return f"{figure.value * scale:.4g} ({figure.kind_label})"
