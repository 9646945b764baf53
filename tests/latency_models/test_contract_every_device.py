"""The cost-model contract over every device profile in ``latency_models/devices/`` and every kernel set that
can be costed here, from the committed tables and profiles (nothing is timed), and the kind registry's choice.

A new profile, table or cost-model kind is covered by adding the file: nothing here names a device.
"""

from __future__ import annotations

import json
import shutil

import optuna
import pytest

from latency_models.device import DEVICES_DIR, available_devices, load_device
from latency_models.errors import CostModelError
from latency_models.kinds import KINDS, kind_named
from latency_models.kinds.analytic.model import AnalyticCostModel
from latency_models.kinds.measured.model import MeasuredCostModel
from latency_models.kinds.offload.model import OffloadCostModel
from latency_models.registry import cost_model, costing_kind, table_summaries
from latency_models.runtimes import runtime_standing_in
from search_spaces.graph import ModelGraph, analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import load_model_spec
from tests.latency_models.contract import check_cost_model, check_monotone_in_channels

COSTED = [
    (name, kernels)
    for name in available_devices()
    for kernels in load_device(name).kernel_sets
    if costing_kind(load_device(name), kernels) is not None
]
MODEL_CLASS = {"measured": MeasuredCostModel, "analytic": AnalyticCostModel, "offload": OffloadCostModel}
FAMILIES = (("dscnn", (8, 8, 1)), ("resnet8", (16, 16, 3)))


def _candidates(device: str, family: str, shape: tuple[int, ...], count: int = 4) -> tuple[ModelGraph, list]:
    """Uniform int8 and seeded random candidates the device runs."""
    spec = load_model_spec(family)
    graph = analyze(spec, shape, 10)
    space = SearchSpace().with_model_rules(spec.rules).restricted_to(load_device(device).precisions)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    randoms = [suggest_candidate(study.ask(), graph, space) for _ in range(count)]
    return graph, [Candidate.uniform(graph, weight_bits=8, activation_bits=8), *randoms]


def test_every_device_profile_can_be_costed_with_its_default_kernel_set():
    assert len(available_devices()) >= 7
    assert {name for name, _ in COSTED} == set(available_devices())
    for name in available_devices():
        assert (name, load_device(name).default_kernel_set) in COSTED


@pytest.mark.parametrize(("family", "shape"), FAMILIES, ids=[family for family, _ in FAMILIES])
@pytest.mark.parametrize(("device", "kernels"), COSTED, ids=[f"{d}-{k}" for d, k in COSTED])
def test_every_device_keeps_the_cost_model_contract(device, kernels, family, shape):
    model = cost_model(device, kernels)
    graph, candidates = _candidates(device, family, shape)
    check_cost_model(model, graph, candidates)
    kind = costing_kind(model.device, kernels)
    assert kind is not None and isinstance(model, MODEL_CLASS[kind.name])
    # A measured table's entries carry the device's noise; a fit or a roofline is monotone by construction.
    tolerance = 0.5 if isinstance(model, MeasuredCostModel) else 0.0
    check_monotone_in_channels(model, graph, candidates[0], [0.25, 0.5, 1.0], tolerance=tolerance)


@pytest.mark.parametrize(("device", "kernels"), COSTED, ids=[f"{d}-{k}" for d, k in COSTED])
def test_every_figure_says_how_far_it_can_be_trusted(device, kernels):
    """Without a calibration a kind's latency is what its source is (a table: measured or fitted; a datasheet:
    analytic); RAM comes from the candidate's memory plan, flash from a fit of file sizes, energy from a stated
    power."""
    model = cost_model(device, kernels, calibrated=False)
    graph, candidates = _candidates(device, "dscnn", (8, 8, 1), count=1)
    cost = model.cost(graph, candidates[0])
    kind = costing_kind(model.device, kernels)
    expected = {"measured", "fitted"} if kind is not None and kind.name == "measured" else {"analytic"}
    assert {part.latency_ms.provenance for part in cost.layers} <= expected | {"analytic"}
    assert cost.latency_ms.provenance in expected | {"analytic"}
    micro = runtime_standing_in(model.device) is not None  # TFLite Micro's arena, its struct sizes fitted
    assert cost.ram_bytes.provenance == ("fitted" if micro else "exact") and cost.flash_bytes.provenance == "fitted"
    assert cost.energy_mj.provenance == "analytic"


@pytest.mark.parametrize("device", available_devices())
def test_devices_lists_the_kind_that_costs_each_kernel_set(device):
    profile = load_device(device)
    for summary in table_summaries(profile):
        kind = costing_kind(profile, summary.kernel_set)
        assert kind is not None
        # An accelerator's figures are analytic, and ``nas devices`` says so.
        assert summary.kind == ("analytic" if kind.name == "offload" else kind.name)


def test_kinds_are_tried_in_priority_order_and_named():
    assert [kind.name for kind in KINDS] == ["measured", "offload", "analytic"]
    assert kind_named("analytic") is KINDS[2]
    with pytest.raises(CostModelError, match="unknown cost-model kind 'vela'; use measured, offload, analytic"):
        kind_named("vela")


@pytest.mark.parametrize("section", [kind.section for kind in KINDS if kind.section is not None])
def test_a_bad_profile_section_is_refused_in_one_line_naming_the_device(section, tmp_path):
    devices = tmp_path / "devices"
    shutil.copytree(DEVICES_DIR, devices)
    name = next(n for n in available_devices() if getattr(load_device(n), section) is not None)
    raw = json.loads((devices / f"{name}.json").read_text())
    raw[section] = {**raw[section], next(iter(raw[section])): "not a number"}
    (devices / f"{name}.json").write_text(json.dumps(raw))
    with pytest.raises(CostModelError) as refused:
        cost_model(name, directory=devices)
    assert str(refused.value).startswith(f"{name}: ") and "\n" not in str(refused.value)


def test_a_device_no_kind_can_cost_says_how_to_measure_it(tmp_path):
    raw = json.loads((DEVICES_DIR / "rpi4.json").read_text())
    del raw["analytic"]
    (tmp_path / "rpi4.json").write_text(json.dumps(raw))
    assert [s.kind for s in table_summaries(load_device("rpi4", tmp_path), tmp_path)] == ["none"]
    with pytest.raises(CostModelError, match=r"no xnnpack latency table and no analytic model; .*--device rpi4"):
        cost_model("rpi4", directory=tmp_path)
