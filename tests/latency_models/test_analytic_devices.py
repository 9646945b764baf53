"""The named edge devices: their analytic models cite their constants, rank devices sensibly, and the
accelerator's fallback rule sends everything from the first op it cannot run to the host. (The cost-model
contract runs over every device in ``test_contract_every_device.py``.)"""

from __future__ import annotations

import json
import shutil

import pytest

from latency_models.device import DEVICES_DIR, available_devices, load_device, this_host
from latency_models.errors import CostModelError
from latency_models.kinds.analytic.model import AnalyticCostModel
from latency_models.kinds.analytic.spec import SPEC_FIELDS, spec_from_dict
from latency_models.kinds.offload.model import OffloadCostModel
from latency_models.registry import cost_model
from nas.profiling.run import profile_and_save
from search_spaces.graph import analyze
from search_spaces.space import Candidate, LayerPolicy
from search_spaces.spec import load_model_spec

EDGE_DEVICES = ("rpi4", "android_a76", "coral_usb", "stm32h7", "nrf52840", "esp32s3")


def test_every_named_edge_device_is_listed():
    assert set(EDGE_DEVICES) <= set(available_devices())


@pytest.mark.parametrize("device", [n for n in available_devices() if load_device(n).analytic is not None])
def test_every_analytic_constant_cites_a_source(device):
    raw = json.loads((DEVICES_DIR / f"{device}.json").read_text())
    for name in SPEC_FIELDS:
        assert len(raw["analytic"][name]["source"]) > 20, (device, name)
    assert raw["active_power"]["source"] and raw["analytic"]["expected_error"]


def test_an_analytic_constant_without_a_source_is_refused():
    raw = json.loads((DEVICES_DIR / "rpi4.json").read_text())["analytic"]
    raw["clock_hz"] = {"value": 1.5e9, "source": " "}
    with pytest.raises(CostModelError, match="rpi4: analytic constant clock_hz needs a value and a source"):
        spec_from_dict(raw, "rpi4")


def test_microcontrollers_are_far_slower_than_phones_and_int8_beats_float_there():
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)
    int8 = Candidate.uniform(graph, weight_bits=8, activation_bits=8)
    fp32 = Candidate.uncompressed(graph)
    latency = {d: cost_model(d).cost(graph, int8).latency_ms.value for d in ("android_a76", "stm32h7", "nrf52840")}
    assert latency["android_a76"] < latency["stm32h7"] < latency["nrf52840"]
    for device in ("stm32h7", "nrf52840", "esp32s3"):
        model = cost_model(device)
        assert model.cost(graph, int8).latency_ms.value < model.cost(graph, fp32).latency_ms.value / 3


def test_the_edge_tpu_runs_ops_up_to_the_first_it_cannot_run_and_the_host_runs_the_rest():
    model = cost_model("coral_usb")
    assert isinstance(model, OffloadCostModel) and isinstance(model.host, AnalyticCostModel)
    graph = analyze(load_model_spec("cnn"), (8, 8, 1), 10)  # conv1, conv2, pool, fc
    int8 = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=8, activation_bits=8)
    fp32 = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=32, activation_bits=32)
    names = [layer.name for layer in graph.compressible]

    def placement(policies: dict[str, LayerPolicy]) -> dict[str, str]:
        candidate = Candidate(policies=tuple((n, policies.get(n, int8)) for n in names))
        parts = model.cost(graph, candidate).layers
        return {p.name: ("accelerator" if "[accelerator]" in p.note else "host") for p in parts if p.name in names}

    assert placement({}) == dict.fromkeys(names, "accelerator")
    assert placement({"fc": fp32}) == {"conv1": "accelerator", "conv2": "accelerator", "fc": "host"}
    # a float layer in the middle sends it and every later layer, int8 or not, to the host
    assert placement({"conv2": fp32}) == {"conv1": "accelerator", "conv2": "host", "fc": "host"}
    everything_on_host = model.cost(graph, Candidate(policies=tuple((n, fp32) for n in names)))
    assert everything_on_host.latency_ms.value == pytest.approx(
        model.host.cost(graph, Candidate.uncompressed(graph)).latency_ms.value
    )
    assert all("[accelerator]" not in p.note for p in everything_on_host.layers)


def test_exactly_one_device_is_this_machine_and_only_it_can_be_profiled(tmp_path):
    """Being measurable here is a property of the profile, not of its name."""

    assert this_host().name == "host"
    assert [n for n in available_devices() if load_device(n).measurable_here] == ["host"]
    devices = tmp_path / "devices"
    shutil.copytree(DEVICES_DIR, devices)
    renamed = json.loads((devices / "host.json").read_text()) | {"name": "bench_pc"}
    (devices / "bench_pc.json").write_text(json.dumps(renamed))
    (devices / "host.json").unlink()
    assert this_host(devices).name == "bench_pc"
    with pytest.raises(CostModelError, match="only 'bench_pc' can"):
        profile_and_save("rpi4", show_progress=False, directory=devices)
