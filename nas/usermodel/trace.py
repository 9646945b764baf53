"""A user's forward function as one flat list of JAX primitives, with every parameter-only value computed.

``jax.make_jaxpr`` records the model as it runs, without touching its code. Calls (``jit``, ``custom_jvp``,
``custom_vjp``, ``checkpoint``) are inlined, so a ``jax.nn.relu`` shows up as the ``max`` it computes and a
layer inside a jitted helper is still found; control flow (``cond``, ``scan``, ``while``) stays one
equation. Equations whose inputs are all parameters (a BatchNorm's ``rsqrt(var + eps) * scale``, a reshaped
bias) are evaluated once, so discovery sees their values, not their recipe.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core

from nas.errors import ConfigError

_INLINED = {"pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "checkpoint", "remat"}
_SUBJAXPR_KEYS = ("jaxpr", "call_jaxpr", "fun_jaxpr")
_LEAF_SUFFIXES = {"value", "raw_value"}  # nnx Variable wrappers around the array itself
_COLLECTIONS = {"params", "batch_stats"}  # linen collections at the top of a variables dict


@dataclass(frozen=True, kw_only=True)
class Trace:
    """A flat jaxpr of ``forward(variables, x)``.

    ``constants`` holds the value of every variable that depends on parameters only, ``owners`` the
    parameter path it derives from (the leaf path that names a layer), ``uses`` how many equations and
    outputs read each variable.
    """

    jaxpr: core.Jaxpr
    input_var: core.Var
    constants: dict[core.Var, np.ndarray]
    owners: dict[core.Var, str]
    uses: dict[core.Var, int]

    def is_constant(self, atom: Any) -> bool:
        """Whether ``atom`` is a literal or depends on parameters only."""
        return isinstance(atom, core.Literal) or atom in self.constants

    def value(self, atom: Any) -> np.ndarray:
        """The value of a literal or parameter-only variable."""
        if isinstance(atom, core.Literal):
            return np.asarray(atom.val)
        return self.constants[atom]


def trace_forward(forward: Callable[[Any, jax.Array], jax.Array], variables: Any, example: np.ndarray) -> Trace:
    """Traces ``forward(variables, example)`` into a flat ``Trace`` (``example`` has a batch axis)."""
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(variables)
    leaves = [jnp.asarray(leaf) for _, leaf in paths_and_leaves]
    paths = [leaf_name(path) for path, _ in paths_and_leaves]

    def flat_forward(*args):
        return forward(jax.tree_util.tree_unflatten(treedef, args[:-1]), args[-1])

    try:
        nested = jax.make_jaxpr(flat_forward)(*leaves, jnp.asarray(example))
    except Exception as err:  # the user's code failed to run: say so in one line, not as our traceback
        raise ConfigError(f"the model could not be traced on inputs of shape {example.shape}: {err}") from None
    if len(nested.jaxpr.outvars) != 1:
        raise ConfigError(f"the model returns {len(nested.jaxpr.outvars)} arrays; it must return the logits only")
    flat = jax.make_jaxpr(lambda *args: _inline(nested.jaxpr, nested.consts, args))(*leaves, jnp.asarray(example))
    jaxpr = _without_dead_code(flat.jaxpr)
    *leaf_vars, input_var = jaxpr.invars
    constants = {var: np.asarray(leaf) for var, leaf in zip(leaf_vars, leaves, strict=True)}
    constants.update({var: np.asarray(value) for var, value in zip(jaxpr.constvars, flat.consts, strict=True)})
    owners = dict(zip(leaf_vars, paths, strict=True))
    _fold_constants(jaxpr, constants, owners)
    return Trace(jaxpr=jaxpr, input_var=input_var, constants=constants, owners=owners, uses=_use_counts(jaxpr))


def leaf_name(path: Sequence[Any], *, keep_collection: bool = False) -> str:
    """A parameter's module path from its pytree path: ``params/block1/conv/kernel`` -> ``block1/conv/kernel``
    (``keep_collection`` keeps the leading ``params`` / ``batch_stats`` of a linen variables dict)."""
    keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    while keys and keys[-1] in _LEAF_SUFFIXES:
        keys.pop()
    if not keep_collection and len(keys) > 1 and keys[0] in _COLLECTIONS:
        keys.pop(0)
    return "/".join(keys)


def layer_name(kernel_path: str) -> str:
    """The name a layer gets from its kernel's path: its module path, ``/`` as ``_`` (``block1_conv``)."""
    module = kernel_path.rsplit("/", 1)[0] if "/" in kernel_path else kernel_path
    return safe_name(module) or "layer"


def safe_name(text: str) -> str:
    """``text`` as a node name: letters, digits and ``_`` only (``block1/conv`` -> ``block1_conv``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text.replace("/", "_"))


def _inline(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any], scope: str = "") -> list[Any]:
    """Evaluates ``jaxpr`` under the current trace, recursing into calls so they leave no call equation.

    Each equation keeps its name scope (a linen module path), which error messages quote.
    """
    env: dict[core.Var, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(atom):
        return atom.val if isinstance(atom, core.Literal) else env[atom]

    for eqn in jaxpr.eqns:
        values = [read(atom) for atom in eqn.invars]
        inner = _called_jaxpr(eqn)
        own_scope = "/".join(part for part in (scope, str(eqn.source_info.name_stack)) if part)
        if inner is not None:
            closed_consts = inner.consts if isinstance(inner, core.ClosedJaxpr) else ()
            body = inner.jaxpr if isinstance(inner, core.ClosedJaxpr) else inner
            outs = _inline(body, closed_consts, values[len(values) - len(body.invars) :], own_scope)
        else:
            with jax.named_scope(own_scope) if own_scope else contextlib.nullcontext():
                result = eqn.primitive.bind(*values, **eqn.params)
            outs = result if eqn.primitive.multiple_results else [result]
        for var, out in zip(eqn.outvars, outs, strict=True):
            env[var] = out
    return [read(atom) for atom in jaxpr.outvars]


def _called_jaxpr(eqn: core.JaxprEqn) -> Any:
    if eqn.primitive.name not in _INLINED:
        return None
    return next((eqn.params[key] for key in _SUBJAXPR_KEYS if key in eqn.params), None)


def _without_dead_code(jaxpr: core.Jaxpr) -> core.Jaxpr:
    """``jaxpr`` without equations whose results nothing reads (a BatchNorm's unused batch statistics)."""
    live = {v for v in jaxpr.outvars if isinstance(v, core.Var)}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if any(v in live for v in eqn.outvars) or eqn.effects:
            kept.append(eqn)
            live.update(v for v in eqn.invars if isinstance(v, core.Var))
    return jaxpr.replace(eqns=list(reversed(kept)))


def _fold_constants(jaxpr: core.Jaxpr, constants: dict, owners: dict) -> None:
    """Evaluates every equation that reads parameters and literals only, recording values and owners."""
    for eqn in jaxpr.eqns:
        if not all(isinstance(a, core.Literal) or a in constants for a in eqn.invars):
            continue
        values = [a.val if isinstance(a, core.Literal) else constants[a] for a in eqn.invars]
        result = eqn.primitive.bind(*values, **eqn.params)
        outs = result if eqn.primitive.multiple_results else [result]
        owner = next((owners[a] for a in eqn.invars if isinstance(a, core.Var) and a in owners), "")
        for var, out in zip(eqn.outvars, outs, strict=True):
            constants[var] = np.asarray(out)
            owners[var] = owner


def _use_counts(jaxpr: core.Jaxpr) -> dict[core.Var, int]:
    uses: dict[core.Var, int] = {}
    for atom in [a for eqn in jaxpr.eqns for a in eqn.invars] + list(jaxpr.outvars):
        if isinstance(atom, core.Var):
            uses[atom] = uses.get(atom, 0) + 1
    return uses
