"""Float regions: the parts of a user's model the search cannot compress, kept as the traced functions they are.

A region is serialized with ``jax.export`` twice, both differentiable (fine-tuning trains the layers before
it through it):

- ``single``, at batch size 1: the static graph the ``.tflite`` export holds (the converter takes it as is);
- ``batched``, polymorphic in the batch size: what fine-tuning and evaluation call.

Files sit beside the discovered spec as ``<digest>.single.jaxexport`` / ``<digest>.batched.jaxexport``, where
the digest (a content hash of both) is what the spec's float node names. Loaded regions are kept by digest,
so every ``SpecNet`` of the graph finds them without carrying functions in the (pure data) graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from nas.checkpoint import atomic_write_bytes
from nas.errors import ConfigError
from search_spaces.spec import FLOAT_OP, ModelSpec, load_model_spec

_SUFFIXES = (".single.jaxexport", ".batched.jaxexport")


@dataclass(frozen=True, kw_only=True)
class SerializedRegion:
    """A region's two serialized exports and the digest that names them."""

    digest: str
    single: bytes
    batched: bytes


@dataclass(frozen=True, kw_only=True)
class _LoadedRegion:
    single: jax.export.Exported
    batched: jax.export.Exported


_LOADED: dict[str, _LoadedRegion] = {}  # by content digest: a cache of immutable functions, never stale


def serialize_region(function: Callable[..., jax.Array], input_shapes: Sequence[tuple[int, ...]]) -> SerializedRegion:
    """Exports ``function`` (which takes batch-1 inputs of ``input_shapes`` plus the batch axis) and registers it."""
    single = jax.export.export(jax.jit(function))(*[jax.ShapeDtypeStruct((1, *s), jnp.float32) for s in input_shapes])

    def per_example(*examples):
        return function(*[x[None] for x in examples])[0]

    (batch,) = jax.export.symbolic_shape("b")
    batched = jax.export.export(jax.jit(jax.vmap(per_example)))(
        *[jax.ShapeDtypeStruct((batch, *s), jnp.float32) for s in input_shapes]
    )
    single_bytes, batched_bytes = bytes(single.serialize(vjp_order=1)), bytes(batched.serialize(vjp_order=1))
    region = SerializedRegion(digest=_digest(single_bytes, batched_bytes), single=single_bytes, batched=batched_bytes)
    _register(region)
    return region


def write_regions(directory: Path, regions: Sequence[SerializedRegion]) -> None:
    """Writes each region's two files into ``directory`` (atomically)."""
    for region in regions:
        for suffix, content in zip(_SUFFIXES, (region.single, region.batched), strict=True):
            atomic_write_bytes(directory / f"{region.digest}{suffix}", _writer(content))


def _writer(content: bytes) -> Callable[[Any], Any]:
    return lambda handle: handle.write(content)


def load_regions(spec: ModelSpec, directory: Path) -> None:
    """Loads the regions ``spec``'s float nodes name from ``directory``, checking each file's content."""
    for node in spec.nodes:
        if node.op != FLOAT_OP or node.function in _LOADED:
            continue
        try:
            single, batched = (Path(directory, f"{node.function}{suffix}").read_bytes() for suffix in _SUFFIXES)
        except FileNotFoundError as err:
            raise ConfigError(
                f"float region {node.name!r} of model {spec.name!r}: {err.filename} is missing; "
                "discover the model again (nas search --model package.module:factory)"
            ) from None
        if _digest(single, batched) != node.function:
            raise ConfigError(f"float region {node.name!r}: the files in {directory} are damaged (digest mismatch)")
        _register(SerializedRegion(digest=node.function, single=single, batched=batched))


def load_spec(reference: str, *, width_multiplier: float | None = None) -> ModelSpec:
    """A family by name or a spec file, with the float regions a discovered spec names loaded from beside it."""
    spec = load_model_spec(reference, width_multiplier=width_multiplier)
    if any(node.op == FLOAT_OP for node in spec.nodes):
        load_regions(spec, Path(reference).parent)
    return spec


def call_region(digest: str, *inputs: jax.Array) -> jax.Array:
    """Runs a loaded region on ``inputs`` (its static batch-1 form for one example, else the batched form)."""
    region = _LOADED.get(digest)
    if region is None:
        raise ConfigError(
            f"float region {digest} is not loaded; load the model's spec with nas.compress.float_regions.load_spec"
        )
    exported = region.single if inputs[0].shape[0] == 1 else region.batched
    return exported.call(*inputs)


def _register(region: SerializedRegion) -> None:
    if region.digest not in _LOADED:
        _LOADED[region.digest] = _LoadedRegion(
            single=jax.export.deserialize(bytearray(region.single)),
            batched=jax.export.deserialize(bytearray(region.batched)),
        )


def _digest(single: bytes, batched: bytes) -> str:
    return hashlib.sha256(single + b"|" + batched).hexdigest()[:16]
