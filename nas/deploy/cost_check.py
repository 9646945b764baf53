"""Predicted against measured, for every export: latency on this host per kernel set, RAM and flash.

The prediction is the host cost model's (the study's device when that is the host; the figures for another
device cannot be measured here and are not compared). Latency is measured with the cost tables' own timing
protocol, so the two sides are comparable; RAM is the interpreter's tensor memory (builtin kernels), flash the
file size.
"""

from __future__ import annotations

from collections.abc import Mapping

from latency_models.device import this_host
from latency_models.energy import measure_energy_mj, rapl_packages
from latency_models.errors import CostModelError
from latency_models.host import cpu_facts
from latency_models.registry import cost_model
from latency_models.runtimes import runtime_for
from latency_models.runtimes.litert.interpreter import load_interpreter
from nas.deploy.export_record import Compared, CostCheck, EnergyCheck, HostCostCheck, LatencyCheck, SkippedCostCheck
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate

ENERGY_INVOKES = 2000


def measured_energy(content: bytes, threads: int) -> float | None:
    """Energy per inference in mJ from the RAPL counter over many invokes (None without a counter)."""
    if not rapl_packages():
        return None
    interpreter = load_interpreter(content, delegate="xnnpack", threads=threads)

    def run() -> None:
        for _ in range(ENERGY_INVOKES):
            interpreter.invoke()

    return measure_energy_mj(run, ENERGY_INVOKES)


def host_cost_check(
    content: bytes,
    graph: ModelGraph,
    candidate: Candidate,
    runtime_bytes: int,
    threads: int = 1,
    measured_ms: Mapping[str, float] | None = None,
) -> CostCheck:
    """Per kernel set: predicted and measured latency and the error; predicted and measured RAM (``runtime_bytes``,
    the interpreter's tensor memory the caller already read) and flash. ``measured_ms`` is the latency per kernel
    set the caller already measured with the same protocol (a file is timed once); missing ones are timed here."""
    try:
        host = this_host()
        models = {kernels: cost_model(host.name, kernels) for kernels in host.kernel_sets}
    except CostModelError as err:  # no host table: nothing to compare against, and say so
        return SkippedCostCheck(reason=str(err))
    runtime = runtime_for(host)
    protocol = runtime.timing_protocol(threads)
    costs = {kernels: model.cost(graph, candidate) for kernels, model in models.items()}
    latency: dict[str, LatencyCheck] = {}
    for kernels, predicted in costs.items():
        known = (measured_ms or {}).get(kernels)
        measured = (
            known if known is not None else runtime.time(content, kernel_set=kernels, protocol=protocol).median_ms
        )
        latency[kernels] = LatencyCheck(
            predicted_ms=predicted.latency_ms.value,
            provenance=predicted.latency_ms.label,
            measured_ms=measured,
            error_pct=round(100 * (predicted.latency_ms.value - measured) / measured, 2),
        )
    cost, default = costs["builtin"], costs["xnnpack"]
    return HostCostCheck(
        device=host.name,
        cpu=cpu_facts(),  # `nas profile --add-exports` folds only exports measured on this CPU into the host tables
        latency=latency,
        energy_mj=EnergyCheck(
            predicted=default.energy_mj.value,
            provenance=default.energy_mj.label,
            measured=measured_energy(content, threads),
            measured_note="RAPL package energy per inference (XNNPACK); None: this machine has no power counter",
        ),
        ram_bytes=Compared(predicted=int(cost.ram_bytes.value), measured=runtime_bytes),
        flash_bytes=Compared(predicted=round(cost.flash_bytes.value), measured=len(content)),
        protocol=protocol.describe(),
    )
