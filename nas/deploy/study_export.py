"""Export and verification of study trials: ``results/<study>/models/trial-N.tflite`` + ``verification.json``.

Every export is verified at once in the LiteRT interpreter (XNNPACK and builtin kernels) against the JAX
fake-quant model of the same candidate on the test split. A model that fails (accuracy off by more than half
a point or top-1 agreement under 99%) is recorded with the first layer whose output diverges.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import optuna

from latency_models.cost import COST_FIGURES
from latency_models.device import DeviceProfile, this_host
from latency_models.errors import CostModelError, ModelLoadError
from latency_models.runtimes import runtime_estimating, runtime_for, runtime_standing_in
from latency_models.runtimes.litert.memory_plan import TensorMemory
from latency_models.tflite_keys import tensor_layers
from nas.activity import require_quiet_machine
from nas.analysis.pareto import front_frame, knee_point, trials_frame
from nas.analysis.quality import collapse_warning
from nas.checkpoint import atomic_write_bytes
from nas.compress.shrink import shrink
from nas.deploy.cost_check import host_cost_check
from nas.deploy.export_record import (
    DeviceCompile,
    DeviceFigure,
    DeviceFigures,
    DeviceRuntimeCheck,
    Divergence,
    ExportRecord,
    KernelResult,
    PredictedSize,
    merge_record,
    read_records,
    record_of_model,
)
from nas.deploy.layer_diff import compare_layers, first_divergence
from nas.errors import ConfigError
from nas.paths import StudyPaths, reference_path
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate
from nas.runtime.verify import AccuracyBar, KernelCheck, Reference, check_kernels, minimum_bar, reference_bar
from nas.search.context import ModelContext, build_model_context
from nas.search.record import TrialRecord
from nas.search.saved import SavedStudy
from nas.training.data import load_dataset
from nas.training.finetune import logits
from search_spaces.space import suggest_candidate


def export_trials(
    name: str,
    numbers: list[int] | None,
    *,
    results_dir: Path,
    storage: str | None = None,
    threads: int = 1,
    knee: bool = False,
    under_load: bool = False,
) -> list[ExportRecord]:
    """Exports and verifies trials (``numbers``; the whole front when None; the knee point with ``knee``).

    Verification times the host, so it is refused while searches run on this machine unless ``under_load``.
    """
    saved = SavedStudy.open(name, results_dir, storage)  # a wrong name is refused first, whatever the machine does
    require_quiet_machine("an export's verification", under_load=under_load)
    study, config, paths = saved.study, saved.config, saved.paths
    front = front_frame(trials_frame(study), config.objectives)
    if knee:
        baseline = study.user_attrs.get("baseline", {}).get("val_accuracy")
        numbers = [knee_point(front, config.objectives, baseline_accuracy=baseline)]
    elif numbers is None:
        numbers = [int(n) for n in front["number"]]
    _check_trials(study, numbers, paths)
    if paths.verification.exists():
        read_records(paths.verification)  # a damaged record file is refused before anything is exported
    context = build_model_context(saved.problem())
    return [export_trial(context, saved, number, threads) for number in numbers]


def export_trial(context: ModelContext, saved: SavedStudy, number: int, threads: int) -> ExportRecord:
    """Exports one trial, verifies it, writes the model and its record; returns the record."""
    study, paths = saved.study, saved.paths
    trial = study.trials[number]
    graph, dataset = context.graph, context.problem.dataset
    candidate = suggest_candidate(optuna.trial.FixedTrial(trial.params), graph, context.problem.space)
    params, compression = saved.trial_weights(number)
    model = export_candidate(graph, params, compression, candidate, dataset.x_train[:CALIBRATION_EXAMPLES])
    reference = Reference(logits=logits(context.trainer, params, compression, dataset.x_test), labels=dataset.y_test)
    jax_accuracy = float((reference.logits.argmax(1) == dataset.y_test).mean())
    checks = check_kernels(model.content, dataset.x_test, dataset.y_test, reference, threads=threads)
    on_device = device_runtime_check(context.problem.device, model.content, dataset.x_test, dataset.y_test, reference)
    passed = all(check.passed for check in checks) and (on_device is None or on_device.passed)
    path = paths.model(number)
    compiled = device_compile(context.problem.device, model.content, path)
    atomic_write_bytes(path, lambda handle: handle.write(model.content))
    atomic_write_bytes(reference_path(path), lambda handle: np.save(handle, reference.logits))
    trial_record = TrialRecord.of(trial)
    figures = {} if trial_record is None else trial_record.figures
    memory = runtime_for(this_host()).memory_plan(model.content)
    x_layers = dataset.x_test[:64]  # a failed export's per-layer comparison
    record = ExportRecord(
        trial=number,
        dataset=context.config.dataset,
        model=str(path),
        passed=passed,
        candidate=candidate.to_dict(),
        file_bytes=model.file_bytes,
        gzip_bytes=model.gzip_bytes,
        predicted=PredictedSize(
            stored_bytes=figures.get("stored_bytes"), compressed_bytes=figures.get("compressed_bytes")
        ),
        jax_test_accuracy=jax_accuracy,
        quality_warning=collapse_warning(
            jax_accuracy, study.user_attrs.get("baseline", {}).get("test_accuracy", 0.0), graph.num_classes
        ),
        kernels=tuple(KernelResult.of(check) for check in checks),
        device_figures=None
        if trial_record is None
        else device_figures(context.problem.device, trial_record, None if on_device is None else on_device.memory),
        latency_provenance="measured on this host, LiteRT Python interpreter, batch 1, the cost tables' protocol",
        runtime_memory=memory,
        cost_check=host_cost_check(
            model.content, graph, candidate, memory.runtime_bytes, threads, measured_ms=_medians(checks)
        ),
        divergence=None if passed else divergence_report(model.content, graph, params, compression, x_layers),
        device_runtime=on_device,
        device_compile=compiled,
    )
    merge_record(paths.verification, record)
    return record


def device_compile(device: DeviceProfile, content: bytes, path: Path) -> DeviceCompile | None:
    """The file compiled by ``device``'s own compiler where it runs here (Vela for an Ethos-U NPU), written
    beside ``path`` (``<stem>_vela.tflite`` and its per-layer ``<stem>_vela.csv``); None for other devices."""
    compiler = runtime_estimating(device)
    if compiler is None:
        return None
    try:
        report = compiler.estimate(content, device)
    except CostModelError as err:
        raise ConfigError(f"{device.name}'s compiler cannot compile the export: {err}") from None
    model, table = path.with_name(f"{path.stem}_vela.tflite"), path.with_name(f"{path.stem}_vela.csv")
    atomic_write_bytes(model, lambda handle: handle.write(report.compiled))
    atomic_write_bytes(table, lambda handle: handle.write(report.per_layer_csv.encode()))
    return DeviceCompile(
        compiler=report.label,
        model=str(model),
        report=str(table),
        latency_ms=report.inference_ms,
        npu_operators=len(report.npu_layers),
        cpu_operators=report.cpu_operators(tensor_layers(content)),
    )


def device_runtime_check(
    device: DeviceProfile, content: bytes, x: np.ndarray, y: np.ndarray, reference: Reference
) -> DeviceRuntimeCheck | None:
    """The file run in the runtime standing in here for ``device``'s own (TFLite Micro for a microcontroller):
    parity with the JAX model and the memory it needs; None where no runtime stands in. A file that runtime
    cannot prepare is refused, naming what it lacks: the device could not run it either."""
    runtime = runtime_standing_in(device)
    if runtime is None:
        return None
    try:
        memory = runtime.memory_plan(content)
        (check,) = check_kernels(content, x, y, reference, timed=False, runtime=runtime)
    except ModelLoadError as err:
        raise ConfigError(
            f"the export does not run in {runtime.version()}, the runtime of {device.name}: {err}; "
            "search with the device's own precisions (a study for this device offers only those)"
        ) from None
    kernels = ", ".join(runtime.kernel_sets)
    return DeviceRuntimeCheck(
        runtime=f"{runtime.version()} ({kernels} kernels on this machine; never timed)",
        check=KernelResult.of(check),
        memory=memory,
    )


def device_figures(
    device: DeviceProfile, record: TrialRecord, measured_memory: TensorMemory | None = None
) -> DeviceFigures | None:
    """The study device's own figures for a trial, each with its provenance, and the margin left under the
    device's RAM and flash limits (None when the study costed no device figure). ``measured_memory``, the arena
    of the runtime standing in for the device's, replaces the predicted RAM."""
    if not record.provenance:
        return None
    values, provenance = dict(record.figures), dict(record.provenance)
    if measured_memory is not None:
        values["ram_bytes"], provenance["ram_bytes"] = measured_memory.runtime_bytes, measured_memory.provenance
    limits = {"ram_bytes": device.ram_bytes, "flash_bytes": device.flash_bytes}
    figures = {}
    for name in COST_FIGURES:
        limit = limits.get(name)
        figures[name] = DeviceFigure(
            value=values[name],
            provenance=provenance[name],
            limit=limit,
            margin_pct=None if limit is None else round(100 * (1 - values[name] / limit), 1),
        )
    return DeviceFigures(device=device.name, figures=figures)


def _medians(checks: list[KernelCheck]) -> dict[str, float]:
    """Each kernel set's measured median latency: the file's one latency figure, reused by the cost check."""
    return {check.delegate: check.latency.median_ms for check in checks if check.latency is not None}


def divergence_report(content: bytes, graph, params, compression, x: np.ndarray) -> Divergence:
    """Per-layer output comparison of a failed export, naming the first layer that diverges."""
    small = shrink(graph, params, compression)
    diffs = compare_layers(content, small.graph, small.params, small.compression, x)
    divergent = first_divergence(diffs)
    return Divergence(
        layers=tuple(asdict(d) | {"steps": d.steps} for d in diffs),
        first_layer=None if divergent is None else divergent.layer,
    )


@dataclass(frozen=True, kw_only=True)
class FileVerification:
    """What ``verify_file`` found of a ``.tflite``: its checks, what they were judged against, what was not checked.

    Printed, never stored: the checks of a study's export are its ``ExportRecord``.
    """

    model: str
    dataset: str
    reference: str | None  # what agreement was checked against (None: the kernel sets against each other)
    accuracy_judged_against: str | None  # None: accuracy was not judged, so the file is not verified
    not_checked: tuple[str, ...]
    jax_test_accuracy: float | None  # from the export's record, when the file is a study's export
    passed: bool
    kernels: tuple[KernelResult, ...]
    runtime_memory: TensorMemory


def verify_file(
    path: Path,
    *,
    dataset_source: str | None,
    threads: int = 1,
    min_accuracy: float | None = None,
    under_load: bool = False,
) -> FileVerification:
    """Re-runs the checks on any ``.tflite`` and says what it could not check.

    Agreement is checked against the JAX predictions kept beside a file exported here. Accuracy is judged
    against ``min_accuracy`` when given, else the JAX accuracy (from those predictions, or the export's record).
    With neither, accuracy is not judged and the file is not verified (``passed`` False, ``not_checked`` says
    why): a model that merely loads and runs proves nothing. Refused under a search's load, as ``export_trials``.
    """
    try:
        content = path.read_bytes()
    except OSError as err:
        raise ModelLoadError(f"cannot read {str(path)!r}: {err.strerror}") from None
    require_quiet_machine("verification", under_load=under_load)
    record = record_of_model(path)
    source = dataset_source or (record.dataset if record is not None else None) or "digits"
    dataset = load_dataset(source)
    reference = _stored_reference(path, dataset.y_test)
    bar = _accuracy_bar(reference, record, min_accuracy)
    checks = check_kernels(content, dataset.x_test, dataset.y_test, reference, threads=threads, bar=bar)
    not_checked = []
    if reference is None:
        not_checked.append(
            f"top-1 agreement with the JAX model (no {reference_path(path).name} beside the file); "
            "agreement between the two kernel sets was checked instead"
        )
    if bar is None:
        not_checked.append("accuracy (no JAX reference and no recorded accuracy): pass --min-accuracy to judge it")
    return FileVerification(
        model=str(path),
        dataset=source,
        reference="JAX fake-quant predictions of the same candidate" if reference is not None else None,
        accuracy_judged_against=None if bar is None else bar.source,
        not_checked=tuple(not_checked),
        jax_test_accuracy=None if record is None else record.jax_test_accuracy,
        passed=all(check.passed for check in checks),
        kernels=tuple(KernelResult.of(check) for check in checks),
        runtime_memory=runtime_for(this_host()).memory_plan(content),
    )


def _stored_reference(path: Path, labels: np.ndarray) -> Reference | None:
    """The JAX outputs kept beside an exported model, checked against the test split they must describe."""
    stored = reference_path(path)
    if not stored.exists():
        return None
    try:
        with stored.open("rb") as handle:
            logits = np.load(handle, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(f"{stored} is damaged ({err or 'empty'}); export the trial again to rewrite it") from None
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or len(logits) != len(labels):
        raise ConfigError(
            f"{stored.name} holds outputs for {len(logits)} examples but the test split has {len(labels)}; "
            "verify with the dataset the model was exported with (--dataset)"
        )
    return Reference(logits=logits, labels=labels)


def _accuracy_bar(
    reference: Reference | None, record: ExportRecord | None, minimum: float | None
) -> AccuracyBar | None:
    """What accuracy is judged against: the user's minimum, the JAX reference, or the export's record."""
    if minimum is not None:
        return minimum_bar(minimum, f"--min-accuracy {minimum:g}")
    if reference is not None:
        return reference_bar(reference)
    if record is None:
        return None
    recorded = record.jax_test_accuracy
    return AccuracyBar(low=recorded, high=recorded, source="JAX test accuracy recorded at export")


def _check_trials(study: optuna.Study, numbers: list[int], paths: StudyPaths) -> None:
    complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    for number in numbers:
        if number not in complete:
            raise ConfigError(f"trial {number} of {study.study_name!r} is not a finished trial")
        if not paths.trial_weights(number).exists():
            raise ConfigError(f"the weights of trial {number} are missing ({paths.trial_weights(number)})")
