"""Vela, the runtime of the Ethos-U devices: registered, compiling real one-layer exports (cycles, NPU placement,
memory), its support table checked against Vela itself on every layer precision the exporter writes, what it
cannot compile refused in one line, and ``nas estimate --file`` printing its estimate as Vela's."""

from __future__ import annotations

from pathlib import Path

import pytest

from latency_models.device import load_device
from latency_models.errors import CostModelError
from latency_models.keys import LayerKey
from latency_models.runtimes import RUNTIMES, runtime_estimating, runtime_for, runtime_named
from latency_models.runtimes.vela import Vela
from latency_models.runtimes.vela.compiler import compile_model
from latency_models.runtimes.vela.config import config_from_dict, vela_config
from latency_models.runtimes.vela.report import per_layer
from latency_models.runtimes.vela.support import ON_NPU
from nas.analysis.estimate import estimate_file
from nas.cli import main
from nas.profiling.micro import export_micro, single, small_layer
from search_spaces.runtime_support import supported_precisions

pytestmark = pytest.mark.slow  # real exports and Vela compiles (about 0.2 s each)

U55 = "ethos_u55_128"
LABEL = "estimated by Vela 5.2.0 (Ethos_U55_High_End_Embedded, Shared_Sram)"
PRECISIONS = [(op, w, a) for op in ("conv", "dwconv", "dense") for w, a in supported_precisions(op)]


def _exported(op: str, weight_bits: int, activation_bits: int) -> bytes:
    return export_micro(small_layer(op, weight_bits, activation_bits))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vela")
    written = {}
    for label, (op, w, a) in {"int8": ("conv", 8, 8), "float": ("conv", 32, 32)}.items():
        written[label] = folder / f"{label}.tflite"
        written[label].write_bytes(_exported(op, w, a))
    written["corrupt"] = folder / "corrupt.tflite"
    written["corrupt"].write_bytes(written["int8"].read_bytes()[:700])
    return written


def test_vela_is_registered_and_runs_the_ethos_u_devices_only():
    vela = runtime_named("vela")
    assert vela in RUNTIMES and isinstance(vela, Vela)
    assert vela.can("estimate") and not any(vela.can(c) for c in ("run", "time", "memory"))
    assert vela.version() == "ethos-u-vela 5.2.0"
    for name in (U55, "ethos_u65_256"):
        assert runtime_for(load_device(name)) is vela and runtime_estimating(load_device(name)) is vela
    assert runtime_estimating(load_device("stm32h7")) is None and runtime_estimating(load_device("host")) is None


def test_a_real_compile_of_an_int8_layer_puts_it_on_the_npu_with_positive_cycles(files):
    vela, device = runtime_named("vela"), load_device(U55)
    estimate = vela.estimate(files["int8"].read_bytes(), device)
    assert estimate.label == LABEL and estimate.accelerator == "Ethos_U55_128" and estimate.clock_hz == 500e6
    assert 0 < estimate.npu_cycles <= estimate.total_cycles
    assert estimate.inference_ms == pytest.approx(estimate.total_cycles / estimate.clock_hz * 1000)
    assert [(layer.operator, layer.target) for layer in estimate.layers] == [("Quantize", "CPU"), ("Conv2D", "NPU")]
    assert sum(layer.cycles or 0 for layer in estimate.layers) == estimate.total_cycles
    assert estimate.sram_bytes > 0 and estimate.off_chip_flash_bytes > 0 and estimate.compiled_bytes > 0
    assert vela.estimate(files["int8"].read_bytes(), device) is estimate  # kept per content and configuration
    other = vela.estimate(files["int8"].read_bytes(), load_device("ethos_u65_256"))
    assert other.system_config == "Ethos_U65_High_End" and other.memory_mode == "Dedicated_Sram"


@pytest.mark.parametrize(("op", "weight_bits", "activation_bits"), PRECISIONS)
def test_the_support_table_agrees_with_vela_on_every_layer_precision(op, weight_bits, activation_bits):
    """int8 weights with int8 or int16 activations on the NPU, every other precision left to the CPU, and INT4
    weights a crash of Vela's compiler, refused before it runs."""
    content = _exported(op, weight_bits, activation_bits)
    support = runtime_named("vela").support(op, weight_bits, activation_bits)
    config = vela_config(load_device(U55))
    if weight_bits == 4:
        assert not support.runs and "INT4" in support.note
        with pytest.raises(CostModelError, match=r"cannot compile the model .*: it crashed \(SIGFPE\)"):
            compile_model(content, config)
        with pytest.raises(CostModelError, match=r"^Vela 5\.2\.0 cannot read INT4 tensors"):
            runtime_named("vela").estimate(content, load_device(U55))
        return
    targets = {layer.target for layer in compile_model(content, config).layers if layer.operator != "Quantize"}
    assert targets == {"NPU" if support.form == ON_NPU else "CPU"}, support


def test_nas_estimate_prints_vela_s_estimate_per_layer(files, capsys):
    assert main(["estimate", "--file", str(files["int8"]), "--device", U55]) == 0
    out = capsys.readouterr().out
    assert "total latency" in out and LABEL in out and "measured" not in out
    total = next(line for line in out.splitlines() if "total latency" in line)
    assert "analytic (Vela 5.2.0 (Ethos_U55_High_End_Embedded, Shared_Sram) for the NPU" in total  # + the CPU side
    assert "Conv2D [NPU]" in out and "(Quantize) (costed above by the profile's analytic model)" in out
    assert "NPU (Ethos_U55_128 at 500 MHz)" in out and "SRAM" in out and "off-chip flash" in out


def test_a_file_across_every_device_shows_vela_s_figures_for_the_ethos_u_ones(files, capsys):
    assert main(["estimate", "--file", str(files["int8"]), "--device", "all"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "(estimated)" in rows[U55] and "(estimated)" in rows["ethos_u65_256"]  # RAM: the SRAM of Vela's plan
    assert "(estimated)" not in rows["stm32h7"]


def test_a_float_layer_left_to_the_cpu_is_named_and_costed_by_the_profile(files, capsys):
    assert main(["estimate", "--file", str(files["float"]), "--device", U55]) == 0
    lines = capsys.readouterr().out.splitlines()
    cpu = [line for line in lines if "left to the CPU by Vela" in line]
    assert len(cpu) == 1 and "(Conv2D)" in cpu[0] and "costed above by the profile's analytic model)" in cpu[0]
    assert "0 of 1 operators on the NPU" in "\n".join(lines)
    # The float conv runs on the Cortex-M55 (the profile's float32 rate), not for free: its part is in the total.
    vela, device = runtime_named("vela"), load_device(U55)
    content = files["float"].read_bytes()
    (layer,) = vela.cpu_layers(content, device)
    cost = estimate_file(files["float"], U55)
    (part,) = [p for p in cost.cost.layers if p.name == layer]
    assert part.latency_ms.provenance == "analytic" and part.latency_ms.value > 0.01  # > 10 us at 0.15 MAC/cycle
    assert cost.cost.latency_ms.value > part.latency_ms.value


def test_a_corrupt_file_is_one_line_and_exit_2(files, capsys):
    assert main(["estimate", "--file", str(files["corrupt"]), "--device", U55]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("nas estimate: error: not a .tflite flatbuffer")
    with pytest.raises(CostModelError, match=r"it crashed \(SIGSEGV\)") as raised:  # why it is checked first
        compile_model(files["corrupt"].read_bytes(), vela_config(load_device(U55)))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("device", [U55, "ethos_u65_256"])
def test_the_profile_s_channel_granule_is_where_vela_s_cycles_jump(device):
    """A 3x3 int8 conv on 8x8x32: the NPU's cycles jump past each block of output channels, and only there."""
    profile = load_device(device)
    config, cycles = vela_config(profile), {}
    for channels in range(6, 19):
        shape = {"height": 8, "width": 8, "in_channels": 32, "kernel": 3, "stride": 1, "act": "relu"}
        key = LayerKey(op="conv", out_channels=channels, weight_bits=8, activation_bits=8, **shape)
        cycles[channels] = compile_model(export_micro(single(key)), config).npu_cycles
    jumps = [c for c in range(7, 19) if cycles[c] > 1.15 * cycles[c - 1]]
    assert jumps == [profile.channel_granule + 1, 2 * profile.channel_granule + 1] == [9, 17]


def test_a_bad_vela_section_is_refused_in_one_line_listing_the_choices():
    raw = dict(load_device(U55).vela or {})
    with pytest.raises(CostModelError, match=r"x: Arm/vela\.ini has no System_Config 'Nope'; use one of .*Ethos_U55"):
        config_from_dict({**raw, "system_config": "Nope"}, "x")
    with pytest.raises(CostModelError, match="x: unknown Vela accelerator 'ethos-u99'"):
        config_from_dict({**raw, "accelerator": "ethos-u99"}, "x")
    with pytest.raises(CostModelError, match=r"Vela ships no configuration file 'Nope\.ini'; use one of Arm/vela\.ini"):
        config_from_dict({**raw, "config_file": "Nope.ini"}, "x")
    with pytest.raises(CostModelError, match="stm32h7: the profile has no 'vela' section"):
        vela_config(load_device("stm32h7"))
    assert vela_config(load_device(U55)).memory_mode == "Shared_Sram"


def test_an_operator_vela_decomposes_is_one_layer(tmp_path):
    """A MEAN becomes a depthwise conv writing a tensor of Vela's own, then a multiply writing the MEAN's output."""
    header = "Original Operator,NNG Operator,Target,Op Cycles,NPU,MAC Count,Name"
    rows = ["Quantize,Passthrough,CPU,0,0,0,x_q", "Conv2D,Conv2D,NPU,90,40,100,a", "Conv2D,Relu,NPU,0,0,0,a"]
    rows += ["Mean,DepthwiseConv2D,NPU,30,30,10,m_intermediate", "Mean,Mul,NPU,5,5,0,m"]
    path = tmp_path / "model_per-layer.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    layers = per_layer(path, frozenset({"x_q", "a", "m"}))
    assert [(layer.tensor, layer.target, layer.cycles) for layer in layers] == [
        ("x_q", "CPU", None),
        ("a", "NPU", 90),
        ("m", "NPU", 35),
    ]
