"""Float regions cut from a trace: the equations discovery could not match, as a function of the node outputs
they read, computing one tensor the rest of the graph needs.

A region is the backward slice of that tensor through unmatched equations, stopping at tensors that are
already graph nodes (its inputs) and at parameters (baked in as constants, so they stay float and unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.extend import core

from nas.usermodel.trace import Trace


@dataclass(frozen=True, kw_only=True)
class Region:
    """Equations (in trace order) computing ``output`` from ``inputs``, with their size figures."""

    inputs: tuple[core.Var, ...]
    output: core.Var
    equations: tuple[core.JaxprEqn, ...]
    macs: int  # multiply-accumulates of products and convolutions, plus one per element of every other step
    float_weights: int  # parameter values the region reads (they stay float32)

    def function(self, trace: Trace, scope: str) -> Callable[..., jax.Array]:
        """The region as a function of its inputs (batch axis first, as traced). Its operations are named
        under ``scope`` (the node's name), which is how the export traces them back to the node."""

        def run(*values: jax.Array) -> jax.Array:
            env: dict[Any, Any] = dict(zip(self.inputs, values, strict=True))
            with jax.named_scope(scope):
                return _evaluate(env)

        def _evaluate(env: dict[Any, Any]) -> jax.Array:
            for eqn in self.equations:
                args = [trace.value(a) if trace.is_constant(a) else env[a] for a in eqn.invars]
                result = eqn.primitive.bind(*args, **eqn.params)
                outs = result if eqn.primitive.multiple_results else [result]
                env.update(zip(eqn.outvars, outs, strict=True))
            return env[self.output]

        return run


def cut_region(trace: Trace, output: core.Var, producer: dict[core.Var, int], known: set[core.Var]) -> Region:
    """The region computing ``output`` from the ``known`` tensors (graph nodes), through the equations that
    ``producer`` maps each unknown tensor to."""
    needed: set[int] = set()
    inputs: list[core.Var] = []
    stack = [output]
    seen: set[core.Var] = set()
    while stack:
        var = stack.pop()
        if var in seen:
            continue
        seen.add(var)
        if var in known:
            inputs.append(var)
            continue
        index = producer[var]
        needed.add(index)
        stack.extend(a for a in trace.jaxpr.eqns[index].invars if isinstance(a, core.Var) and a not in trace.constants)
    equations = tuple(trace.jaxpr.eqns[i] for i in sorted(needed))
    order = {var: i for i, var in enumerate(trace.jaxpr.invars)}
    return Region(
        inputs=tuple(sorted(inputs, key=lambda v: (order.get(v, len(order)), str(v)))),
        output=output,
        equations=equations,
        macs=sum(_macs(eqn) for eqn in equations),
        float_weights=_weights_read(trace, equations),
    )


def _macs(eqn: core.JaxprEqn) -> int:
    out = math.prod(tuple(eqn.outvars[0].aval.shape))  # type: ignore[attr-defined]
    if eqn.primitive.name == "dot_general":
        (contract, _), _ = eqn.params["dimension_numbers"]
        lhs = tuple(eqn.invars[0].aval.shape)  # type: ignore[attr-defined]
        return out * math.prod(lhs[d] for d in contract)
    if eqn.primitive.name == "conv_general_dilated":
        kernel = tuple(eqn.invars[1].aval.shape)  # type: ignore[attr-defined]
        return out * math.prod(kernel) // max(kernel[-1], 1)
    return max([out, *(math.prod(tuple(a.aval.shape)) for a in eqn.invars)])  # type: ignore[attr-defined]


def _weights_read(trace: Trace, equations: tuple[core.JaxprEqn, ...]) -> int:
    constants = {a for eqn in equations for a in eqn.invars if isinstance(a, core.Var) and a in trace.owners}
    return sum(int(np.size(trace.constants[a])) for a in constants if np.size(trace.constants[a]) > 1)
