"""``nas profile --device host``: the host's latency tables, measured from micro-models.

For every op kind and every precision the device runs, micro-models over a grid of input sizes and channel
counts are exported through the project's exporter and timed by the device's runtime (``latency_models.runtimes``:
the LiteRT interpreter) with each kernel set (XNNPACK and builtin), by the runtime's timing protocol. The table
stores each op's *net* latency, with the whole-model terms taken out:

- ``invoke``: the interpreter's fixed cost per invoke (a one-element float model, timed several times at the
  start and the end of the profile; the median);
- ``quantize``: the QUANTIZE of a float tensor into an integer layer, per tensor size and bit width, from one
  1x1 depthwise conv against two (their difference is one conv; the rest of one is overhead + QUANTIZE);
- ``dequantize``: the DEQUANTIZE of an integer tensor into a float layer (an integer conv, then a float one);
- ``requantize``: int8 <-> int16 QUANTIZE between layers (mixed two-conv chains).

The exporter keeps an integer model's output integer (no DEQUANTIZE at the end), so a compressible op's net
latency is its micro-model's latency minus ``invoke`` and, when its activations are integer, minus the
QUANTIZE of its input. A pool, flatten or residual add is measured after a 1x1 depthwise conv, against that
conv alone: the difference is the op.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import optuna
from tqdm import tqdm

from latency_models.device import DeviceProfile
from latency_models.host import cpu_facts
from latency_models.keys import layer_keys
from latency_models.predictor import MIN_POINTS, interpolate_term
from latency_models.runtimes import runtime_for
from latency_models.runtimes.base import Runtime
from latency_models.runtimes.litert.timing import TimingProtocol, relative_difference
from latency_models.table import LatencyTable, LayerKey, Measurement
from nas.profiling.micro import MicroModel, chain, export_micro, single, with_pre
from nas.provenance import git_commit
from search_spaces.graph import analyze
from search_spaces.space import Candidate, SearchSpace, suggest_candidate
from search_spaces.spec import available_models, load_model_spec

SHAPE_FIELDS = ("height", "width", "in_channels", "out_channels", "kernel", "stride", "act")
SHAPE_OPS = ("avg_pool", "max_pool", "global_avg_pool", "add", "flatten")
ACTIVATION_BITS = (8, 16, 32)
NOISE_EVERY = 8  # every n-th micro-model is timed twice: the spread of the pairs is the noise floor


@dataclass(frozen=True, kw_only=True)
class Grid:
    """The shapes profiled per op kind (sampled from these axes, corners always included)."""

    spatial: tuple[int, ...] = (1, 2, 4, 8, 16, 28, 32)
    # Channel counts off the powers of two too: pruned layers keep such counts, and SIMD tiles make them dearer.
    conv_in: tuple[int, ...] = (3, 8, 12, 16, 24, 32, 48, 64, 128, 256)
    conv_out: tuple[int, ...] = (8, 12, 16, 24, 32, 40, 48, 64, 128, 256)
    depthwise: tuple[int, ...] = (8, 12, 16, 24, 32, 48, 64, 128, 256)
    dense_in: tuple[int, ...] = (16, 40, 64, 128, 200, 256, 576, 1024, 2048)
    dense_out: tuple[int, ...] = (10, 16, 24, 32, 64, 128, 256)
    per_precision: int = 24
    # Shapes the built-in families' search spaces produce (nn-Meter's adaptive sampling draws from the model
    # zoo's configurations the same way): layers with pruned channels at the input sizes users search.
    family_per_precision: int = 24
    family_input_sizes: tuple[int, ...] = (8, 28, 32)
    family_candidates: int = 12
    # Tensor sizes (H, W, C) at which the whole-model terms are measured.
    boundary_shapes: tuple[tuple[int, int, int], ...] = (
        (1, 1, 8),
        (4, 4, 8),
        (8, 8, 8),
        (8, 8, 32),
        (16, 16, 16),
        (16, 16, 64),
        (32, 32, 32),
    )
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class ProfileResult:
    """The tables of one profile run and its figures."""

    tables: dict[str, LatencyTable]
    seconds: float
    micro_models: int
    noise_floor_pct: float


def op_keys(device: DeviceProfile, grid: Grid) -> list[LayerKey]:
    """Every key to measure: per op kind and precision the device runs, a sample of the grid's shapes."""
    rng = np.random.default_rng(grid.seed)
    keys: list[LayerKey] = []
    shapes: dict[str, list[dict[str, Any]]] = {
        "conv": [
            dict(height=h, width=h, in_channels=i, out_channels=o, kernel=k, stride=s, act="relu")
            for h, i, o, k, s in itertools.product(grid.spatial, grid.conv_in, grid.conv_out, (1, 3), (1, 2))
        ],
        "dwconv_multiplier": [
            dict(height=h, width=h, in_channels=1, out_channels=o, kernel=3, stride=s, act="relu")
            for h, o, s in itertools.product(grid.spatial, grid.conv_out, (1, 2))
        ],
        "dwconv": [
            dict(height=h, width=h, in_channels=c, out_channels=c, kernel=3, stride=s, act="relu")
            for h, c, s in itertools.product(grid.spatial, grid.depthwise, (1, 2))
        ],
        "dense": [dict(in_channels=i, out_channels=o) for i, o in itertools.product(grid.dense_in, grid.dense_out)],
    }
    found = family_shapes(grid)
    for op, options in shapes.items():
        for w, a in device.precisions.get(op, ()):
            picked = _sample(options, grid.per_precision, rng) + _sample(
                found.get(op, []), grid.family_per_precision, rng
            )
            for shape in _unique(picked):
                keys.append(LayerKey(op=op, weight_bits=w, activation_bits=a, **shape))
    shape_options = [
        dict(height=h, width=h, in_channels=c, out_channels=c)
        for h, c in itertools.product(grid.spatial, grid.conv_out)
    ]
    for op, a in itertools.product(SHAPE_OPS, ACTIVATION_BITS):
        for shape in _sample(shape_options, max(grid.per_precision // 2, MIN_POINTS), rng):
            window = 2 if op in ("avg_pool", "max_pool") else 1
            out = shape["in_channels"] * (shape["height"] * shape["width"] if op == "flatten" else 1)
            keys.append(replace(LayerKey(op=op, kernel=window, activation_bits=a, **shape), out_channels=out))
        for shape in _sample(found.get(op, []), max(grid.family_per_precision // 2, MIN_POINTS), rng):
            keys.append(LayerKey(op=op, activation_bits=a, **shape))
    return list(dict.fromkeys(keys))


def family_shapes(grid: Grid) -> dict[str, list[dict[str, Any]]]:
    """Per op kind, the distinct layer shapes of seeded random candidates of every built-in family."""
    found: dict[str, dict[tuple, dict[str, Any]]] = {}
    for family in available_models():
        spec = load_model_spec(family)
        space = SearchSpace().with_model_rules(spec.rules).without_sparsity()
        for size in grid.family_input_sizes:
            graph = analyze(spec, (size, size, 1), 10)
            sampler = optuna.samplers.RandomSampler(seed=grid.seed + size)
            study = optuna.create_study(sampler=sampler)
            candidates = [Candidate.uncompressed(graph)]
            candidates += [suggest_candidate(study.ask(), graph, space) for _ in range(grid.family_candidates)]
            for candidate in candidates:
                for _, key in layer_keys(graph, candidate):
                    shape = {name: getattr(key, name) for name in SHAPE_FIELDS}
                    found.setdefault(key.op, {})[tuple(shape.values())] = shape
    return {op: list(shapes.values()) for op, shapes in found.items()}


def _unique(shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({tuple(shape.values()): shape for shape in shapes}.values())


def _sample(options: list[dict[str, Any]], count: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``count`` options: the smallest and the largest by work, and a seeded sample of the rest."""
    if len(options) <= count:
        return options
    work = [np.prod([v for v in o.values() if isinstance(v, int)]) for o in options]
    corners = {int(np.argmin(work)), int(np.argmax(work))}
    if count <= len(corners):
        return [options[i] for i in sorted(corners)][:count]
    rest = [i for i in range(len(options)) if i not in corners]
    picked = sorted(corners | set(rng.choice(rest, size=count - len(corners), replace=False).tolist()))
    return [options[i] for i in picked]


def micro_models(key: LayerKey) -> tuple[MicroModel, ...]:
    """Every micro-model the net latency of ``key`` is computed from."""
    return with_pre(key) if key.op in SHAPE_OPS else (micro_for(key),)


def micro_for(key: LayerKey) -> MicroModel:
    """The micro-model that isolates ``key`` (the runtime's channel-multiplier depthwise is a 1-channel conv)."""
    if key.op == "dwconv_multiplier":
        return single(replace(key, op="conv"))
    return single(key)


def micro_identity(micro: MicroModel) -> str:
    """A micro-model's identity across processes and machines: a digest of its graph, input and precisions."""
    text = json.dumps([micro.graph.spec.to_json(), list(micro.graph.input_shape), micro.precisions])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class MicroTimings(Protocol):
    """Where a profile's derivation gets a micro-model's latency per kernel set: timed here (``Timer``), read
    back from a kit's CSV (``nas.profiling.kit``), or only noted (``RecordingTimer``)."""

    kernel_sets: tuple[str, ...]

    def __call__(self, micro: MicroModel) -> dict[str, Measurement]: ...


class Timer:
    """Exports and times micro-models with every kernel set of a runtime, caching by identity."""

    def __init__(
        self, runtime: Runtime, kernel_sets: tuple[str, ...], protocol: TimingProtocol, progress: tqdm
    ) -> None:
        self.runtime = runtime
        self.kernel_sets = kernel_sets
        self.protocol = protocol
        self.progress = progress
        self.cache: dict[str, dict[str, Measurement]] = {}
        self.contents: dict[str, bytes] = {}
        self.noise: list[float] = []

    def __call__(self, micro: MicroModel) -> dict[str, Measurement]:
        """Median latency of ``micro`` per kernel set."""
        identity = micro_identity(micro)
        if identity not in self.cache:
            content = export_micro(micro)
            self.contents[identity] = content
            self.cache[identity] = {kernels: self.time(content, kernels) for kernels in self.kernel_sets}
            if len(self.cache) % NOISE_EVERY == 0:
                again = self.time(content, self.kernel_sets[0])
                self.noise.append(relative_difference(self.cache[identity][self.kernel_sets[0]], again))
            self.progress.update(1)
        return self.cache[identity]

    def retime(self, micro: MicroModel) -> dict[str, float]:
        """A fresh median latency (ms) of an already measured micro-model, per kernel set."""
        self(micro)
        content = self.contents[micro_identity(micro)]
        return {k: self.time(content, k).median_ms for k in self.kernel_sets}

    def time(self, content: bytes, kernels: str) -> Measurement:
        """One measurement of ``content`` with ``kernels``, by the runtime and this profile's protocol."""
        return self.runtime.time(content, kernel_set=kernels, protocol=self.protocol)


class RecordingTimer:
    """Notes which micro-models a derivation asks for, in order, answering with a placeholder (the kit's list)."""

    PLACEHOLDER = Measurement(median_ms=1.0, p25_ms=1.0, p75_ms=1.0, runs=1)

    def __init__(self, kernel_sets: tuple[str, ...]) -> None:
        self.kernel_sets = kernel_sets
        self.models: dict[str, MicroModel] = {}

    def __call__(self, micro: MicroModel) -> dict[str, Measurement]:
        self.models.setdefault(micro_identity(micro), micro)
        return {kernels: self.PLACEHOLDER for kernels in self.kernel_sets}


INVOKE_MICRO = single(LayerKey(op="dwconv", weight_bits=32, activation_bits=32))  # one float multiply
INVOKE_SAMPLES = 4  # at the start and at the end of the profile, so a drift of the machine shows in neither


def invoke_overhead(samples: list[dict[str, float]]) -> dict[str, float]:
    """The interpreter's cost per invoke, per kernel set: the median of the one-element model's samples."""
    return {kernels: float(np.median([sample[kernels] for sample in samples])) for kernels in samples[0]}


def boundary_terms(
    timer: MicroTimings, shapes: tuple[tuple[int, int, int], ...], invoke: dict[str, float]
) -> dict[str, dict[LayerKey, float]]:
    """Per kernel set: ``invoke``, and ``quantize``, ``dequantize`` and ``requantize`` per tensor size and bits."""
    terms: dict[str, dict[LayerKey, float]] = {}
    for kernels in timer.kernel_sets:
        overhead = invoke[kernels]
        found = {LayerKey(op="invoke"): overhead}

        def ms(micro: MicroModel, kernels: str = kernels) -> float:
            return timer(micro)[kernels].median_ms

        for h, w, c in shapes:
            size = h * w * c
            convs, quantize = {}, {}
            for bits in (8, 16, 32):
                dw = _boundary_conv(h, w, c, bits)
                convs[bits] = ms(chain(dw, dw)) - ms(single(dw))
                quantize[bits] = max(ms(single(dw)) - overhead - convs[bits], 0.0)
            for bits in (8, 16):
                found[LayerKey(op="quantize", in_channels=size, activation_bits=bits)] = quantize[bits]
                # an integer conv, then a float one: invoke + QUANTIZE + conv(bits) + DEQUANTIZE + conv(float)
                mixed = ms(chain(_boundary_conv(h, w, c, bits), _boundary_conv(h, w, c, 32)))
                dequantize = mixed - overhead - quantize[bits] - convs[bits] - convs[32]
                found[LayerKey(op="dequantize", in_channels=size, weight_bits=bits)] = max(dequantize, 0.0)
            for first, second in ((8, 16), (16, 8)):
                mixed = ms(chain(_boundary_conv(h, w, c, first), _boundary_conv(h, w, c, second)))
                requantize = mixed - overhead - quantize[first] - convs[first] - convs[second]
                key = LayerKey(op="requantize", in_channels=size, weight_bits=first, activation_bits=second)
                found[key] = max(requantize, 0.0)
        terms[kernels] = found
    return terms


def _boundary_conv(h: int, w: int, c: int, bits: int) -> LayerKey:
    weight_bits = 32 if bits == 32 else 8
    return LayerKey(
        op="dwconv", height=h, width=w, in_channels=c, out_channels=c, weight_bits=weight_bits, activation_bits=bits
    )


def term_points(terms: dict[LayerKey, float], op: str, bits: int) -> dict[int, float]:
    """A whole-model term's measurements by tensor size (``bits``: the integer side of the boundary)."""
    return {
        key.in_channels: value
        for key, value in terms.items()
        if key.op == op and (key.activation_bits if op == "quantize" else key.weight_bits) == bits
    }


def net_latency(key: LayerKey, timer: MicroTimings, terms: dict[LayerKey, float], kernels: str) -> float:
    """The op's own latency: its micro-model's latency without the whole-model terms around it."""
    if key.op in SHAPE_OPS:
        both, alone = with_pre(key)
        return timer(both)[kernels].median_ms - timer(alone)[kernels].median_ms
    measured = timer(micro_for(key))[kernels].median_ms - terms[LayerKey(op="invoke")]
    if key.activation_bits == 32:
        return measured
    in_size = key.in_channels * (1 if key.op == "dense" else key.height * key.width)
    return measured - interpolate_term(term_points(terms, "quantize", key.activation_bits), in_size)[0]


def profile_device(
    device: DeviceProfile,
    *,
    grid: Grid | None = None,
    protocol: TimingProtocol | None = None,
    show_progress: bool = True,
) -> ProfileResult:
    """Measures ``device``'s latency tables on this machine (the device must be the host)."""
    grid = grid or Grid()
    runtime = runtime_for(device)
    protocol = protocol or runtime.timing_protocol(device.threads)
    keys = op_keys(device, grid)
    start = time.perf_counter()
    with tqdm(desc=f"profile {device.name}", unit="model", file=sys.stderr, disable=not show_progress) as bar:
        timer = Timer(runtime, device.kernel_sets, protocol, bar)
        samples = [timer.retime(INVOKE_MICRO) for _ in range(INVOKE_SAMPLES)]  # the first also warms up
        for key in keys:
            for micro in micro_models(key):
                timer(micro)
        samples += [timer.retime(INVOKE_MICRO) for _ in range(INVOKE_SAMPLES)]
        entries = derive_entries(keys, timer, grid.boundary_shapes, invoke_overhead(samples[1:]))
    seconds = time.perf_counter() - start
    noise = 100 * float(np.median(timer.noise)) if timer.noise else float("nan")
    provenance = {
        "device": device.name,
        "runtime": runtime.version(),
        "threads": protocol.threads,
        "cpu": cpu_facts(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "protocol": protocol.describe(),
        "noise_floor_pct": round(noise, 3),
        "micro_models": len(timer.cache),
        "profile_seconds": round(seconds, 1),
        "method": (__doc__ or "").strip().splitlines()[0],
        **git_commit(),
    }
    tables = {
        kernels: LatencyTable(
            device=device.name,
            kernel_set=kernels,
            entries=entries[kernels],
            provenance={**provenance, "kernel_set": kernels},
        )
        for kernels in device.kernel_sets
    }
    return ProfileResult(tables=tables, seconds=seconds, micro_models=len(timer.cache), noise_floor_pct=noise)


def derive_entries(
    keys: list[LayerKey],
    timer: MicroTimings,
    boundary_shapes: tuple[tuple[int, int, int], ...],
    invoke: dict[str, float],
) -> dict[str, dict[LayerKey, Measurement]]:
    """Per kernel set, the table's entries: the whole-model terms and every key's net latency, derived from the
    micro-models' latencies ``timer`` gives (``invoke``: the interpreter's cost per invoke)."""
    terms = boundary_terms(timer, boundary_shapes, invoke)
    entries: dict[str, dict[LayerKey, Measurement]] = {k: {} for k in timer.kernel_sets}
    for kernels in timer.kernel_sets:
        for term, value in terms[kernels].items():
            entries[kernels][term] = _derived(value)
        for key in keys:
            entries[kernels][key] = _derived(net_latency(key, timer, terms[kernels], kernels))
    return entries


def required_micro_models(device: DeviceProfile, grid: Grid) -> tuple[list[LayerKey], list[MicroModel]]:
    """The keys of ``device``'s table and every micro-model their derivation reads, the invoke model first."""
    keys = op_keys(device, grid)
    recorder = RecordingTimer(device.kernel_sets)
    recorder(INVOKE_MICRO)
    for key in keys:
        for micro in micro_models(key):
            recorder(micro)
    derive_entries(keys, recorder, grid.boundary_shapes, dict.fromkeys(device.kernel_sets, 0.0))
    return keys, list(recorder.models.values())


def _derived(value_ms: float) -> Measurement:
    """A measurement derived by differences (clamped at zero: a difference within the noise can go negative)."""
    value = max(value_ms, 0.0)
    return Measurement(median_ms=value, p25_ms=value, p75_ms=value, runs=1)
