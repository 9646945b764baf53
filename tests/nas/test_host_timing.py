"""Host latency in the loop: each trial's file timed against a reference timed beside it, once per content."""

from __future__ import annotations

from typing import ClassVar

import optuna
import pytest
from optuna.trial import TrialState

from latency_models.correction import load_measured_models, measured_models_path
from latency_models.registry import cost_model
from latency_models.runtimes import runtime_named
from latency_models.runtimes.base import Capability, Runtime
from latency_models.runtimes.litert.timing import TimingProtocol
from latency_models.table import Measurement
from nas.config import FinetuneConfig, SearchConfig, TrainConfig
from nas.errors import ConfigError
from nas.profiling.micro import export_micro, small_layer
from nas.runtime.host_timing import HostTiming
from nas.search.context import resolve_problem
from nas.search.record import TrialRecord
from nas.search.study import run_search, study_config
from nas.search.trial_owner import worker_identity
from search_spaces.runtime_support import Support


class ScriptedRuntime(Runtime):
    """A runtime whose timings are given (a fake clock): the drift correction's arithmetic, exactly."""

    name: ClassVar[str] = "scripted"
    kernel_sets: ClassVar[tuple[str, ...]] = ("xnnpack",)
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"time"})

    def __init__(self, medians: dict[bytes, list[float]]) -> None:
        self.medians = medians

    def version(self) -> str:
        return "scripted 1"

    def support(self, op: str, weight_bits: int, activation_bits: int) -> Support:
        return Support(runs=True, form="int", note="")

    def timing_protocol(self, threads: int = 1) -> TimingProtocol:
        return TimingProtocol(threads=threads)

    def time(self, content: bytes, *, kernel_set: str, protocol: TimingProtocol) -> Measurement:
        median = self.medians[content].pop(0)
        return Measurement(median_ms=median, p25_ms=median, p75_ms=median, runs=1)


def test_a_file_is_expressed_at_the_machine_speed_of_the_search_s_start():
    # The reference took 2 ms at the start; around the file it takes 3 and 5 ms: the machine runs at half speed.
    runtime = ScriptedRuntime({b"ref": [2.0, 3.0, 5.0], b"file": [8.0]})
    timing = HostTiming.start(runtime, "xnnpack", 1, b"ref")
    figure = timing.latency(b"file")
    assert figure.value == pytest.approx(8.0 * 2.0 / 4.0)
    assert figure.provenance == "measured" and figure.label.startswith("measured (scripted 1, xnnpack kernels")
    assert timing.latency(b"file").value == figure.value and timing.timed == 1  # the same content: not timed again


def test_the_same_file_is_timed_once_in_litert():
    content = export_micro(small_layer("conv", 8, 8))
    timing = HostTiming.start(runtime_named("litert"), "xnnpack", 1, content)
    first, again = timing.latency(content), timing.latency(bytes(content))
    assert first.value > 0 and again == first and timing.timed == 1


def test_measuring_a_device_that_is_not_here_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^--host-latency measured times each trial on this machine, and stm32h7"):
        resolve_problem(SearchConfig(device="stm32h7", host_latency="measured"))
    with pytest.raises(ConfigError, match="--host-latency must be one of auto, predicted, measured"):
        SearchConfig(host_latency="sometimes")


def test_auto_times_a_new_host_latency_study_and_keeps_a_resumed_study_s_setting(monkeypatch):
    monkeypatch.delenv("NAS_HOST_LATENCY", raising=False)
    assert SearchConfig().settled(True).host_latency == "measured"
    assert SearchConfig(objectives=("accuracy", "energy_mj")).settled(True).host_latency == "measured"
    assert SearchConfig(objectives=("accuracy", "stored_bytes")).settled(True).host_latency == "predicted"
    assert SearchConfig(device="stm32h7").settled(False).host_latency == "predicted"  # nothing here to time
    stored = SearchConfig(host_latency="predicted")
    assert SearchConfig().settled(True, stored).host_latency == "predicted"  # an older study resumes as it ran
    assert SearchConfig(host_latency="predicted").settled(True).host_latency == "predicted"
    monkeypatch.setenv("NAS_HOST_LATENCY", "predicted")
    assert SearchConfig().settled(True).host_latency == "predicted"
    monkeypatch.setenv("NAS_HOST_LATENCY", "often")
    with pytest.raises(ConfigError, match=r"^NAS_HOST_LATENCY must be one of auto, predicted, measured, got 'often'"):
        SearchConfig().settled(True)


@pytest.mark.slow
def test_a_host_search_times_every_trial_s_file_and_keeps_its_prediction(tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_HOST_LATENCY", raising=False)  # the default: a new host study is timed
    config = SearchConfig(
        train=TrainConfig(epochs=3),
        finetune=FinetuneConfig(steps=5, learning_rate=1e-3),
    )
    run_search(resolve_problem(config), name="timed", trials=3, results_dir=tmp_path, show_progress=False)
    study = optuna.load_study(study_name="timed", storage=f"sqlite:///{tmp_path / 'timed' / 'study.db'}")
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert len(trials) == 3
    for trial in trials:
        record = TrialRecord.of(trial)
        assert record is not None and record.finetuned and "timing" in record.seconds
        assert record.provenance["latency_ms"].startswith("measured (ai-edge-litert")
        assert record.provenance["energy_mj"] == "analytic"  # the power is the profile's
        assert record.figures["latency_ms"] > 0 and record.predicted["latency_ms"] > 0
    assert study_config(study).host_latency == "measured"
    # Every timed file is kept for the host's learned correction, once per content.
    model = cost_model("host", "xnnpack")
    kept = load_measured_models(
        measured_models_path("host", "xnnpack", model.calibration_basis(model.device, "xnnpack"))
    )
    figures = {round(TrialRecord.of(t).figures["latency_ms"], 12) for t in trials}  # type: ignore[union-attr]
    assert 1 <= len(kept) <= 3 and {round(m.measured_ms, 12) for m in kept} == figures
    assert all(m.source.startswith("a search of cnn on digits") for m in kept)


@pytest.mark.slow
def test_two_workers_time_their_trials_at_the_speed_the_run_started_at(tmp_path):
    config = SearchConfig(
        host_latency="measured",
        train=TrainConfig(epochs=3),
        finetune=FinetuneConfig(steps=5, learning_rate=1e-3),
    )
    run_search(resolve_problem(config), name="two", trials=4, results_dir=tmp_path, show_progress=False, workers=2)
    study = optuna.load_study(study_name="two", storage=f"sqlite:///{tmp_path / 'two' / 'study.db'}")
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    # Every trial ran in a worker process (the main process runs none with --workers 2), however the two
    # shared them out: each was timed there against the reference figure the main process recorded.
    assert trials and all(t.user_attrs["worker"] != worker_identity() for t in trials)
    assert study.user_attrs["host_timing"]["reference_ms"] > 0  # the main process's figure, shared by both
    for trial in trials:
        record = TrialRecord.of(trial)
        assert record is not None and "timing" in record.seconds
        assert record.provenance["latency_ms"].startswith("measured (ai-edge-litert")
