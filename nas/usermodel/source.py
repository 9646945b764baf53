"""Where a user's model comes from: a Flax module and its variables, a factory named on the command line, and
saved weights (Flax msgpack or ``.npz``, never pickle), all turned into one pure ``forward(variables, x)``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax import nnx, serialization

from nas.checkpoint import atomic_write_bytes
from nas.errors import ConfigError
from nas.usermodel.trace import leaf_name

# Keyword arguments a module's __call__ commonly takes to choose inference behaviour, and their inference values.
_INFERENCE_FLAGS = {"train": False, "training": False, "deterministic": True, "use_running_average": True}


@dataclass(frozen=True, kw_only=True)
class UserModel:
    """A user's network as a pure function of its variables, plus a description for provenance."""

    forward: Callable[[Any, jax.Array], Any]  # returns the logits
    variables: Any
    name: str
    framework: str  # "flax.linen", "flax.nnx" or "function"

    @property
    def description(self) -> str:
        """One line saying what the model is and where it came from."""
        return f"{self.name} ({self.framework}), discovered by tracing"


def user_model(model: Any, variables: Any = None, *, call_kwargs: dict[str, Any] | None = None) -> UserModel:
    """Wraps a ``flax.linen`` module with its variables, an ``nnx`` module, or ``forward(variables, x)``.

    ``call_kwargs`` go to the module's ``__call__``; by default the inference flags it accepts (``train=False``,
    ``deterministic=True``, ...) are passed, so BatchNorm uses its running statistics and dropout is off.
    """
    if isinstance(model, nn.Module):
        if variables is None:
            raise ConfigError("a flax.linen module needs its trained variables: pass variables=model.init(...) output")
        kwargs = _inference_kwargs(type(model).__call__) if call_kwargs is None else call_kwargs

        def forward(v: Any, x: jax.Array) -> Any:
            return model.apply(v, x, **kwargs)

        return UserModel(
            forward=forward,
            variables=variables,
            name=type(model).__name__,
            framework="flax.linen",
        )
    if isinstance(model, nnx.Module):
        return _nnx_model(model, variables, call_kwargs)
    if callable(model):
        if variables is None:
            raise ConfigError("a forward function needs the variables it takes: forward(variables, x)")
        return UserModel(
            forward=model, variables=variables, name=getattr(model, "__name__", "forward"), framework="function"
        )
    raise ConfigError(
        f"cannot search a {type(model).__name__}: pass a flax.linen module with its variables, an nnx module, "
        "or a function forward(variables, x)"
    )


def _nnx_model(model: nnx.Module, state: Any, call_kwargs: dict[str, Any] | None) -> UserModel:
    model = nnx.clone(model)  # eval() and a weights update below must not change the user's own object
    model.eval()
    if state is not None:
        nnx.update(model, state)
    graphdef, weights, rest = nnx.split(model, (nnx.Param, nnx.BatchStat), ...)  # type: ignore[misc]
    kwargs = call_kwargs or {}

    def forward(variables, x):
        return nnx.merge(graphdef, variables, rest)(x, **kwargs)

    return UserModel(forward=forward, variables=weights, name=type(model).__name__, framework="flax.nnx")


def _inference_kwargs(call: Callable) -> dict[str, Any]:
    try:
        parameters = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in _INFERENCE_FLAGS.items() if name in parameters}


def load_factory(reference: str) -> UserModel:
    """Calls ``package.module:function``, which returns ``(linen_module, variables)`` or an ``nnx`` module.

    The current directory is importable, as with ``python -m``.
    """
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name.isidentifier():
        raise ConfigError(f"--model {reference!r}: name a factory as package.module:function")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"--model {reference!r}: cannot import {module_name!r} ({err}); make it importable") from None
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise ConfigError(f"--model {reference!r}: {module_name} has no function {function_name!r}")
    made = factory()
    if isinstance(made, tuple) and len(made) == 2:
        return user_model(made[0], made[1])
    if isinstance(made, nnx.Module):
        return user_model(made)
    raise ConfigError(
        f"--model {reference!r}: the factory must return (linen_module, variables) or an nnx module, "
        f"not {type(made).__name__}"
    )


def with_weights(model: UserModel, path: Path) -> UserModel:
    """``model`` with variables read from ``path``: Flax ``.msgpack`` serialization or ``.npz`` by leaf path.

    Every variable of the model must be in the file with its shape; nothing is loaded with pickle.
    """
    target = model.variables
    if isinstance(target, nnx.State):  # files hold its pure form: nnx.to_pure_dict(nnx.state(model))
        pure = _restore(path, nnx.to_pure_dict(target))
        loaded = jax.tree_util.tree_map(lambda leaf: leaf, target)  # a copy: the update below is in place
        nnx.replace_by_pure_dict(loaded, pure)
    else:
        loaded = _restore(path, target)
    return UserModel(forward=model.forward, variables=loaded, name=model.name, framework=model.framework)


def _restore(path: Path, target: Any) -> Any:
    if path.suffix == ".npz":
        return _from_npz(path, target)
    if path.suffix != ".msgpack":
        raise ConfigError(f"weights file {str(path)!r}: use a Flax .msgpack (flax.serialization.to_bytes) or .npz")
    try:
        loaded = serialization.from_bytes(target, path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"weights file {str(path)!r} does not exist") from None
    except Exception as err:  # msgpack and flax raise many types for damaged or mismatched files
        raise ConfigError(f"weights file {str(path)!r} does not fit the model: {err}") from None
    _check_shapes(path, target, loaded)
    return loaded


def save_weights(path: Path, variables: Any) -> None:
    """Writes ``variables`` (linen variables, or an nnx ``State``) as an ``.npz`` keyed by leaf path, the form
    ``with_weights`` reads."""
    flat = {
        leaf_name(p, keep_collection=True): np.asarray(leaf)
        for p, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]
    }
    atomic_write_bytes(path, lambda handle: np.savez(handle, **flat))  # type: ignore[arg-type]  # numpy's stub


def _from_npz(path: Path, target: Any) -> Any:
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ConfigError(f"weights file {str(path)!r} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ConfigError(f"weights file {str(path)!r} is not a readable .npz ({err})") from None
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
    names = [leaf_name(p, keep_collection=True) for p, _ in paths_and_leaves]
    missing = [n for n in names if n not in stored]
    if missing:
        raise ConfigError(f"weights file {str(path)!r} lacks {', '.join(missing[:3])} (keys are leaf paths)")
    unknown = sorted(set(stored) - set(names))
    if unknown:
        raise ConfigError(f"weights file {str(path)!r} has arrays the model does not: {', '.join(unknown[:3])}")
    loaded = jax.tree_util.tree_unflatten(treedef, [stored[n] for n in names])
    _check_shapes(path, target, loaded)
    return loaded


def _check_shapes(path: Path, target: Any, loaded: Any) -> None:
    for (key, want), got in zip(
        jax.tree_util.tree_flatten_with_path(target)[0], jax.tree_util.tree_leaves(loaded), strict=True
    ):
        if np.shape(want) != np.shape(got):
            name = leaf_name(key, keep_collection=True)
            raise ConfigError(
                f"weights file {str(path)!r}: {name} has shape {np.shape(got)}, the model {np.shape(want)}"
            )
