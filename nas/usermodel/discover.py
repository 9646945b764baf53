"""Graph discovery: the model graph of a user's Flax network, found by tracing it (never by rewriting it).

The flat trace (``trace.py``) is matched against the operations the search, the cost models and the exporter
understand, in execution order:

- ``dot_general`` / ``conv_general_dilated`` with a parameter kernel -> ``dense`` / ``conv`` / ``dwconv``;
- the per-channel affine steps that follow (a bias, an inference-mode BatchNorm, any add / subtract /
  multiply / divide by a per-channel constant) are folded into that layer's kernel and bias, as the converter
  folds them; a following ``max`` / ``min`` / ``clamp`` chain that computes relu or relu6 (checked on probe
  values, however it was written) becomes the layer's activation;
- the sum of two activations -> ``add`` (residual); ``reduce_window_max`` -> ``max_pool``;
  ``reduce_window_sum`` / window size -> ``avg_pool``; a spatial mean -> ``global_avg_pool``;
  a reshape to ``(batch, features)`` -> ``flatten``.

Everything else (a LayerNorm, attention, a custom op) becomes a *float region*: the unmatched equations that
compute a tensor the graph needs, kept as the traced function they are (``regions.py``), run unchanged and
exported in float; the channel groups around a region are not pruned. The result is a ``ModelSpec`` (the
type the built-in families are written in) plus the folded weights in its layout, so channel groups
(residual adds, depthwise chains) come from the same analysis as for the built-in families, and everything
downstream is shared. Discovery then runs the spec against the user's own forward pass and refuses it
unless both agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core

from nas.compress.float_regions import SerializedRegion, serialize_region
from nas.compress.models import SpecNet
from nas.errors import ConfigError
from nas.usermodel.regions import cut_region
from nas.usermodel.trace import Trace, layer_name, safe_name, trace_forward
from search_spaces.graph import ModelGraph, analyze
from search_spaces.spec import FLOAT_OP, ModelSpec, NodeSpec

_NHWC_HWIO = ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
_AFFINE = ("add", "sub", "mul", "div")
_CLIPPING = ("max", "min", "clamp")
_ALIASES = ("convert_element_type", "copy", "optimization_barrier")
_PROBE = np.concatenate([np.linspace(-10.0, 10.0, 401), [-1e3, 1e3]]).astype(np.float32)  # every 0.05, and far out
PARITY_TOLERANCE = 1e-4  # relative to the largest logit: float32 reassociation stays far below it


class Unsupported(Exception):
    """An equation discovery cannot express; the message names it and why."""


@dataclass(frozen=True, kw_only=True)
class DiscoveredModel:
    """A user's network as the search sees it: its graph, its folded float weights and where they came from."""

    spec: ModelSpec
    graph: ModelGraph
    params: dict[str, dict[str, np.ndarray]]
    regions: tuple[SerializedRegion, ...]  # the traced functions of the float regions, which the spec names
    parity_error: float  # largest |spec logits - model logits| / largest |model logit| on the examples

    @property
    def float_regions(self) -> list[tuple[str, str]]:
        """Each part of the model that stays float, with the reason."""
        return [(node.name, node.reason) for node in self.spec.nodes if node.op == FLOAT_OP]


def discover(
    forward: Callable[[Any, jax.Array], jax.Array],
    variables: Any,
    examples: np.ndarray,
    *,
    name: str = "custom",
    description: str = "",
) -> DiscoveredModel:
    """Finds the graph of ``forward(variables, x)`` for inputs like ``examples`` (a batch, channels last).

    Raises:
        ConfigError: the model cannot be traced, uses an operation the search cannot express yet (named,
            with the parameters it reads), or the discovered graph does not reproduce its outputs.
    """
    examples = np.asarray(examples, np.float32)
    trace = trace_forward(forward, variables, examples[:1])
    matcher = _Matcher(trace)
    try:
        nodes, params = matcher.match()
    except Unsupported as err:
        raise ConfigError(f"the model cannot be searched: {err}") from None
    spec = ModelSpec(name=name, description=description, nodes=tuple(nodes))
    num_classes = int(_shape(trace.jaxpr.outvars[0])[-1])
    graph = analyze(spec, tuple(examples.shape[1:]), num_classes)
    error = _parity_error(graph, params, forward, variables, examples)
    if not error <= PARITY_TOLERANCE:
        raise ConfigError(
            f"the discovered graph does not reproduce the model (relative difference {error:.2g} > "
            f"{PARITY_TOLERANCE:g}); the model computes something discovery misread, please report it"
        )
    return DiscoveredModel(spec=spec, graph=graph, params=params, regions=tuple(matcher.regions), parity_error=error)


def _parity_error(graph: ModelGraph, params: dict, forward: Callable, variables: Any, examples: np.ndarray) -> float:
    expected = np.asarray(forward(variables, jnp.asarray(examples)), np.float32)
    rebuilt = SpecNet(graph=graph, folded=True).apply({"params": jax.tree_util.tree_map(jnp.asarray, params)}, examples)
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    return float(np.max(np.abs(np.asarray(rebuilt) - expected))) / scale


class _Matcher:
    """One pass over the trace's equations, turning each recognized pattern into a ``NodeSpec``."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.readers: dict[core.Var, list[int]] = {}
        for index, eqn in enumerate(trace.jaxpr.eqns):
            for atom in eqn.invars:
                if isinstance(atom, core.Var):
                    self.readers.setdefault(atom, []).append(index)
        self.index_of = {id(eqn): index for index, eqn in enumerate(trace.jaxpr.eqns)}
        self.node_of: dict[core.Var, str] = {trace.input_var: "input"}
        self.done: set[int] = set()
        self.nodes: list[NodeSpec] = []
        self.params: dict[str, dict[str, np.ndarray]] = {}
        self.used_names = {"input"}
        self.producer = {var: index for index, eqn in enumerate(trace.jaxpr.eqns) for var in eqn.outvars}
        self.unmatched: dict[int, str] = {}  # equation index -> why it was not matched
        self.regions: list[SerializedRegion] = []

    def match(self) -> tuple[list[NodeSpec], dict[str, dict[str, np.ndarray]]]:
        for index, eqn in enumerate(self.trace.jaxpr.eqns):
            if index in self.done or all(self.trace.is_constant(a) for a in eqn.invars):
                continue
            self.done.add(index)
            try:
                self._match_one(eqn)
            except Unsupported as why:
                self.unmatched[index] = str(why)
        output = self.trace.jaxpr.outvars[0]
        if isinstance(output, core.Var) and output not in self.node_of:
            self._source(output, self.trace.jaxpr.eqns[-1])
        last = self.nodes[-1] if self.nodes else None
        if (
            last is None
            or not isinstance(output, core.Var)
            or self.node_of.get(output) != last.name
            or last.op != "dense"
        ):
            raise Unsupported("the model must end in a dense layer that returns the logits (no softmax after it)")
        self.nodes[-1] = replace(last, features=None)  # the class count, as in the families
        return self.nodes, self.params

    def _match_one(self, eqn: core.JaxprEqn) -> None:
        name = eqn.primitive.name
        if name in ("dot_general", "conv_general_dilated"):
            self._layer(eqn)
        elif name in _ALIASES or (name == "reshape" and _shape(eqn.outvars[0]) == _shape(eqn.invars[0])):
            self.node_of[eqn.outvars[0]] = self._source(eqn.invars[0], eqn)
        elif name == "add" and not any(self.trace.is_constant(a) for a in eqn.invars):
            self._add(eqn)
        elif name in ("reduce_window_max", "reduce_window_sum"):
            self._pool(eqn)
        elif name == "reduce_sum":
            self._global_pool(eqn)
        elif name == "reshape":
            self._flatten(eqn)
        else:
            raise Unsupported(self._describe(eqn, "is not a layer or pooling the search compresses"))

    # -- layers ---------------------------------------------------------------------------------------------

    def _layer(self, eqn: core.JaxprEqn) -> None:
        x, w = eqn.invars
        if not self.trace.is_constant(w) or self.trace.is_constant(x):
            raise Unsupported(self._describe(eqn, "multiplies two activations (only parameter kernels are layers)"))
        kernel = self.trace.value(w).astype(np.float32)
        fields = self._dense(eqn, kernel) if eqn.primitive.name == "dot_general" else self._conv(eqn, kernel)
        kernel = fields.pop("kernel_value")
        source = self._source(x, eqn)  # before the steps below consume equations: it may still refuse
        scale, shift, scaled, out = self._affine_chain(eqn.outvars[0], kernel.shape[-1])
        act, out = self._activation(out)
        name = self._fresh(layer_name(self.trace.owners.get(w, "") if isinstance(w, core.Var) else ""))
        self.params[name] = {"kernel": kernel * scale, "bias": shift}
        self._add_node(out, name=name, inputs=(source,), bn=scaled, act=act, **fields)

    def _dense(self, eqn: core.JaxprEqn, kernel: np.ndarray) -> dict[str, Any]:
        (lhs_contract, rhs_contract), batch = eqn.params["dimension_numbers"]
        x_shape = _shape(eqn.invars[0])
        if len(x_shape) != 2 or kernel.ndim != 2 or batch != ((), ()) or tuple(lhs_contract) != (1,):
            raise Unsupported(
                self._describe(eqn, "is a matrix product over a tensor that is not (batch, features); flatten first")
            )
        kernel = kernel if tuple(rhs_contract) == (0,) else kernel.T  # x @ W or x @ W.T
        return {"op": "dense", "features": kernel.shape[1], "kernel_value": kernel}

    def _conv(self, eqn: core.JaxprEqn, kernel: np.ndarray) -> dict[str, Any]:
        p = eqn.params
        numbers = p["dimension_numbers"]
        layout = (tuple(numbers.lhs_spec), tuple(numbers.rhs_spec), tuple(numbers.out_spec))
        if layout != _NHWC_HWIO or kernel.ndim != 4:
            raise Unsupported(self._describe(eqn, "is a convolution that is not 2-D NHWC / HWIO"))
        if set(p["lhs_dilation"]) != {1} or set(p["rhs_dilation"]) != {1} or p["batch_group_count"] != 1:
            raise Unsupported(self._describe(eqn, "is a dilated or batch-grouped convolution"))
        in_shape = _shape(eqn.invars[0])
        groups, out_channels = p["feature_group_count"], kernel.shape[-1]
        if groups == 1:
            op = "conv"
        elif groups == in_shape[-1] and kernel.shape[2] == 1 and out_channels == groups:
            op = "dwconv"
        else:
            raise Unsupported(self._describe(eqn, "is a grouped convolution or has a channel multiplier"))
        window, stride = tuple(kernel.shape[:2]), tuple(p["window_strides"])
        padding = self._padding(eqn, in_shape[1:3], window, stride, p["padding"])
        return {
            "op": op,
            "features": out_channels if op == "conv" else None,
            "kernel": window,
            "stride": stride,
            "padding": padding,
            "kernel_value": kernel,
        }

    def _affine_chain(self, var: core.Var, channels: int) -> tuple[np.ndarray, np.ndarray, bool, core.Var]:
        """Folds the per-channel ``add / sub / mul / div`` by constants that follow a layer: ``y -> a*y + b``."""
        scale: np.ndarray = np.ones(channels, np.float32)
        shift: np.ndarray = np.zeros(channels, np.float32)
        scaled = False
        while (eqn := self._sole_reader(var)) is not None and eqn.primitive.name in _AFFINE:
            other_index = 1 if eqn.invars[0] is var else 0
            other = eqn.invars[other_index]
            if not self.trace.is_constant(other) or _shape(eqn.outvars[0]) != _shape(var):
                break
            c = _per_channel(self.trace.value(other), _shape(var))
            op = eqn.primitive.name
            if c is None or (op == "div" and other_index == 0):
                break
            if op == "add":
                shift = shift + c
            elif op == "sub":
                scale, shift = (scale, shift - c) if other_index == 1 else (-scale, c - shift)
            else:
                factor = c if op == "mul" else np.float32(1.0) / c
                scale, shift, scaled = scale * factor, shift * factor, True
            self._consume(eqn)
            var = eqn.outvars[0]
        return scale, shift, scaled, var

    def _activation(self, var: core.Var) -> tuple[str | None, core.Var]:
        """A following clip chain that computes relu or relu6 (checked on probe values); else no activation."""
        chain: list[core.JaxprEqn] = []
        current = var
        while (eqn := self._sole_reader(current)) is not None and eqn.primitive.name in _CLIPPING:
            others = [a for a in eqn.invars if a is not current]
            if _shape(eqn.outvars[0]) != _shape(var) or not all(self.trace.is_constant(a) for a in others):
                break
            chain.append(eqn)
            current = eqn.outvars[0]
        for length in range(len(chain), 0, -1):
            act = self._clip_function(chain[:length], var)
            if act is not None:
                for eqn in chain[:length]:
                    self._consume(eqn)
                return act, chain[length - 1].outvars[0]
        return None, var

    def _clip_function(self, chain: list[core.JaxprEqn], var: core.Var) -> str | None:
        """``relu`` or ``relu6`` if the chain computes it at every probe value (in tiles of the tensor's shape)."""
        shape = _shape(var)
        size = int(np.prod(shape))
        matches = {"relu": True, "relu6": True}
        for start in range(0, _PROBE.size, size):
            probe = np.resize(np.roll(_PROBE, -start), shape)
            result = self._run_chain(chain, var, probe)
            matches["relu"] &= np.array_equal(result, np.maximum(probe, 0.0))
            matches["relu6"] &= np.array_equal(result, np.clip(probe, 0.0, 6.0))
        return next((act for act, ok in matches.items() if ok), None)

    def _run_chain(self, chain: list[core.JaxprEqn], var: core.Var, probe: np.ndarray) -> np.ndarray:
        env: dict[Any, np.ndarray] = {var: probe}
        for eqn in chain:
            values = [self.trace.value(a) if self.trace.is_constant(a) else env[a] for a in eqn.invars]
            env[eqn.outvars[0]] = np.asarray(eqn.primitive.bind(*values, **eqn.params))
        return env[chain[-1].outvars[0]]

    # -- shape operations -----------------------------------------------------------------------------------

    def _add(self, eqn: core.JaxprEqn) -> None:
        a, b = eqn.invars
        if _shape(a) != _shape(b) or len(_shape(a)) != 4:
            raise Unsupported(self._describe(eqn, "adds tensors that are not images of one shape (NHWC)"))
        inputs = (self._source(a, eqn), self._source(b, eqn))
        act, out = self._activation(eqn.outvars[0])
        self._add_node(out, name=self._fresh("add"), op="add", inputs=inputs, act=act)

    def _pool(self, eqn: core.JaxprEqn) -> None:
        p = eqn.params
        window, strides = tuple(p["window_dimensions"]), tuple(p["window_strides"])
        dilated = set(p["base_dilation"]) != {1} or set(p["window_dilation"]) != {1}
        if len(window) != 4 or window[0] != 1 or window[3] != 1 or window != strides or dilated:
            raise Unsupported(self._describe(eqn, "pools with a stride other than its window, or over batch/channels"))
        in_shape = _shape(eqn.invars[0])
        padding = self._padding(eqn, in_shape[1:3], window[1:3], strides[1:3], p["padding"][1:3])
        out, op = eqn.outvars[0], "max_pool"
        divide = None
        if eqn.primitive.name == "reduce_window_sum":
            divide = self._division(out, window[1] * window[2], eqn, "a window sum that is not divided by its size")
            out, op = divide.outvars[0], "avg_pool"
        source = self._source(eqn.invars[0], eqn)
        if divide is not None:
            self._consume(divide)
        act, out = self._activation(out) if op == "avg_pool" else (None, out)
        self._add_node(out, name=self._fresh(op), op=op, inputs=(source,), window=window[1:3], padding=padding, act=act)

    def _global_pool(self, eqn: core.JaxprEqn) -> None:
        shape = _shape(eqn.invars[0])
        if len(shape) != 4 or tuple(eqn.params["axes"]) != (1, 2):
            raise Unsupported(self._describe(eqn, "sums over axes other than the spatial ones"))
        divide = self._division(eqn.outvars[0], shape[1] * shape[2], eqn, "a spatial sum that is not a mean")
        source = self._source(eqn.invars[0], eqn)
        self._consume(divide)
        act, out = self._activation(divide.outvars[0])
        self._add_node(out, name=self._fresh("global_avg_pool"), op="global_avg_pool", inputs=(source,), act=act)

    def _flatten(self, eqn: core.JaxprEqn) -> None:
        in_shape, out_shape = _shape(eqn.invars[0]), _shape(eqn.outvars[0])
        flattens = len(in_shape) == 4 and len(out_shape) == 2 and out_shape[0] == in_shape[0]
        if not flattens or eqn.params.get("dimensions") is not None:
            raise Unsupported(self._describe(eqn, f"reshapes {in_shape} to {out_shape} (only flattening is supported)"))
        source = self._source(eqn.invars[0], eqn)
        self._add_node(eqn.outvars[0], name=self._fresh("flatten"), op="flatten", inputs=(source,))

    def _division(self, var: core.Var, count: int, origin: core.JaxprEqn, what: str) -> core.JaxprEqn:
        """The equation dividing ``var`` by ``count`` (or multiplying by its inverse); refuses anything else."""
        eqn = self._sole_reader(var)
        if eqn is not None and eqn.invars[0] is var and self.trace.is_constant(eqn.invars[1]):
            factor = self.trace.value(eqn.invars[1])
            if factor.size == 1:
                value = float(factor.reshape(-1)[0])
                if (eqn.primitive.name == "div" and value == count) or (
                    eqn.primitive.name == "mul" and np.isclose(value * count, 1.0, rtol=1e-6)
                ):
                    return eqn
        raise Unsupported(self._describe(origin, f"is {what}"))

    # -- helpers --------------------------------------------------------------------------------------------

    def _padding(self, eqn, spatial, window, stride, pads) -> str:
        same = [tuple(p) for p in jax.lax.padtype_to_pads(tuple(spatial), tuple(window), tuple(stride), "SAME")]
        pads = [tuple(p) for p in pads]
        if pads == same:
            return "SAME"
        if all(p == (0, 0) for p in pads):
            return "VALID"
        raise Unsupported(self._describe(eqn, f"uses explicit padding {pads} (only SAME or VALID)"))

    def _sole_reader(self, var: core.Var) -> core.JaxprEqn | None:
        readers = self.readers.get(var, [])
        if len(readers) != 1 or var in self.trace.jaxpr.outvars or readers[0] in self.done:
            return None
        return self.trace.jaxpr.eqns[readers[0]]

    def _consume(self, eqn: core.JaxprEqn) -> None:
        self.done.add(self.index_of[id(eqn)])

    def _source(self, atom: Any, eqn: core.JaxprEqn) -> str:
        """The node that computes ``atom``; a tensor of unmatched equations becomes a float region node."""
        if isinstance(atom, core.Var) and atom not in self.node_of and self.producer.get(atom) in self.unmatched:
            self._float_region(atom)
        if not isinstance(atom, core.Var) or atom not in self.node_of:
            raise Unsupported(self._describe(eqn, "reads a tensor computed inside an operation discovery matched"))
        return self.node_of[atom]

    def _float_region(self, var: core.Var) -> None:
        region = cut_region(self.trace, var, self.producer, set(self.node_of))
        indices = [self.index_of[id(eqn)] for eqn in region.equations]
        if any(i not in self.unmatched for i in indices):
            raise Unsupported(self._describe(region.equations[0], "mixes matched and unmatched operations"))
        inputs = tuple(self.node_of[v] for v in region.inputs)
        name = self._fresh(_region_name(region.equations))
        serialized = serialize_region(region.function(self.trace, name), [_shape(v)[1:] for v in region.inputs])
        self.regions.append(serialized)
        first = self.unmatched[indices[0]]
        more = f" ({len(indices)} operations stay float)" if len(indices) > 1 else ""
        node = NodeSpec(
            name=name,
            op=FLOAT_OP,
            inputs=inputs,
            shape=_shape(var)[1:],
            function=serialized.digest,
            reason=first + more,
            macs=region.macs,
            float_weights=region.float_weights,
        )
        self.nodes.append(node)
        self.node_of[var] = node.name

    def _add_node(self, out: core.Var, **fields: Any) -> None:
        node = NodeSpec(**fields)
        self.nodes.append(node)
        self.node_of[out] = node.name

    def _fresh(self, base: str) -> str:
        name, count = base, 1
        while name in self.used_names:
            count += 1
            name = f"{base}{count}"
        self.used_names.add(name)
        return name

    def _describe(self, eqn: core.JaxprEqn, why: str) -> str:
        shapes = " x ".join(str(_shape(a)) for a in eqn.invars)
        owners = sorted(
            {self.trace.owners[a] for a in eqn.invars if isinstance(a, core.Var) and a in self.trace.owners}
        )
        scope = str(eqn.source_info.name_stack)
        where = f" in module {scope}" if scope else ""
        where += f" (parameters {', '.join(owners)})" if owners else ""
        return f"{eqn.primitive.name} on {shapes}{where} {why}"


def _region_name(equations: tuple[core.JaxprEqn, ...]) -> str:
    """A float region's name: the innermost module scope its equations share (``norm``), else ``float``."""
    scopes = [str(eqn.source_info.name_stack).split("/") for eqn in equations]
    common = scopes[0]
    for scope in scopes[1:]:
        common = [a for a, _ in itertools.takewhile(lambda pair: pair[0] == pair[1], zip(common, scope, strict=False))]
    tail = next((part for part in reversed(common) if part), "")
    return f"{safe_name(tail)}_float" if tail else "float"


def _shape(atom: Any) -> tuple[int, ...]:
    """The shape of a jaxpr variable or literal (its abstract value is an array type here)."""
    return tuple(atom.aval.shape)


def _per_channel(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as one number per channel (last axis) if it is constant along every other axis, else None."""
    try:
        full = np.broadcast_to(value, shape)
    except ValueError:
        return None
    rows = full.reshape(-1, shape[-1])
    return rows[0].astype(np.float32) if np.array_equal(rows, np.broadcast_to(rows[0], rows.shape)) else None
