"""A file's cost on an Ethos-U device from Vela's estimate: what a trial for the device records and what
``nas estimate --file`` prints.

The NPU's share is Vela's (provenance ``estimated``, its source naming Vela's version, system config and
memory mode): each operator it placed on the NPU with its cycles, and the cycles it counts outside any
operator. What runs on the system's CPU is not in Vela's estimate: the interpreter's invoke, the input's
QUANTIZE and any operator Vela leaves to the CPU. Those ``cpu_side`` terms come from the device profile's
analytic model and keep their ``analytic`` label, so a total with them is analytic too (the weakest part), its
source saying how much of it is Vela's. Flash is the compiled file (exact); RAM is the SRAM of Vela's plan
(estimated: the CPU operators' tensors are not in it).
"""

from __future__ import annotations

from collections.abc import Sequence

from latency_models.cost import Cost, Figure, LayerCost, total, weakest
from latency_models.device import DeviceProfile
from latency_models.keys import Boundary
from latency_models.runtimes.vela.report import VelaEstimate, VelaLayer

FLOAT_BITS = 32
CONVERSION_OPERATORS = ("Quantize", "Dequantize")  # Vela's names of the conversions ``on_the_cpu`` costs


def vela_cost(
    device: DeviceProfile, report: VelaEstimate, *, names: dict[str, str], cpu_side: Sequence[LayerCost] = ()
) -> Cost:
    """The cost of the file Vela estimated in ``report``; ``names`` maps its output tensors to layer names and
    ``cpu_side`` are the analytic terms of what runs on the CPU."""
    npu = merged([npu_part(report, layer, names.get(layer.tensor, layer.tensor)) for layer in report.npu_layers])
    unplaced = report.total_cycles - sum(layer.cycles or 0 for layer in report.npu_layers)
    if unplaced > 0:  # kept so that the parts add up to Vela's total
        npu.append(cycles_part("other NPU work", unplaced, report, "cycles Vela counts outside any operator"))
    latency = combined(total(part.latency_ms for part in npu), total(part.latency_ms for part in cpu_side), report)
    return Cost(
        device=device.name,
        latency_ms=latency,
        energy_mj=latency.scaled(device.active_power.watts, "analytic"),  # W x ms = mJ; the power is the profile's
        flash_bytes=Figure(value=float(report.compiled_bytes), provenance="exact"),
        ram_bytes=Figure(value=float(report.sram_bytes), provenance="estimated", source=report.source),
        layers=(*npu, *cpu_side),
    )


def on_the_cpu(edges: Sequence[Boundary]) -> list[Boundary]:
    """The precision boundaries an Ethos-U system's CPU converts: to and from float (the NPU has no float
    arithmetic; Vela leaves those QUANTIZE and DEQUANTIZE operators to the CPU). A requantization between
    integer widths runs on the NPU and is in Vela's estimate already."""
    return [edge for edge in edges if FLOAT_BITS in (edge.from_bits, edge.to_bits)]


def merged(parts: Sequence[LayerCost]) -> list[LayerCost]:
    """One part per layer name, in order: a layer whose output Vela requantizes on the NPU (to int16 for the
    next layer) is two operators of one layer, and a record keyed by layer would keep only one of them."""
    by_name: dict[str, LayerCost] = {}
    for part in parts:
        known = by_name.get(part.name)
        by_name[part.name] = (
            part
            if known is None
            else LayerCost(
                name=part.name,
                latency_ms=known.latency_ms + part.latency_ms,
                note=f"{known.note}; {part.note}",
                group=known.group,
            )
        )
    return list(by_name.values())


def npu_part(report: VelaEstimate, layer: VelaLayer, name: str) -> LayerCost:
    """An operator Vela placed on the NPU, with its cycles."""
    note = f"{layer.operator} [NPU] {layer.cycles} cycles ({layer.npu_cycles} computing, {layer.macs} MACs)"
    return cycles_part(name, layer.cycles or 0, report, note)


def cycles_part(name: str, cycles: int, report: VelaEstimate, note: str) -> LayerCost:
    """``cycles`` of the NPU as a latency part at its clock, labelled as Vela's estimate."""
    latency = Figure(value=cycles / report.clock_hz * 1000, provenance="estimated", source=report.source)
    return LayerCost(name=name, latency_ms=latency, note=note, group="int8")


def combined(npu: Figure, cpu: Figure, report: VelaEstimate) -> Figure:
    """Vela's NPU time plus the CPU side's analytic terms, the source saying how much is whose."""
    if cpu.value == 0:
        return npu
    return Figure(
        value=npu.value + cpu.value,
        provenance=weakest((npu.provenance, cpu.provenance)),
        source=f"{report.source} for the NPU, {cpu.value * 1000:.3g} us on the CPU from the profile's analytic model",
    )
