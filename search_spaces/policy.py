"""How one layer is compressed (``LayerPolicy``) and what it may take (``LayerChoices``): the vocabulary the
techniques, the space, the compressed model, the cost models and the export share."""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.errors import SpecError
from search_spaces.grid import Grid
from search_spaces.runtime_support import ACTIVATION_BITS, WEIGHT_BITS


def check_bits(name: str, bits: tuple[int, ...] | None, allowed: tuple[int, ...]) -> None:
    """Refuses an empty list of bit widths or a width outside ``allowed``."""
    if bits is not None and (not bits or any(b not in allowed for b in bits)):
        raise SpecError(f"{name} {bits} must be a non-empty subset of {allowed}")


@dataclass(frozen=True, kw_only=True)
class LayerChoices:
    """What one layer may take after rules and runtime support are applied."""

    sparsity: Grid
    channel_keep: Grid
    precisions: tuple[tuple[int, int], ...]
    # The keep ratios left once the device's channel granule snaps the grid (None: no granule, the grid's own).
    snapped_keep: tuple[float, ...] | None = None

    def keep_ratios(self) -> tuple[float, ...]:
        """The channel keep ratios this layer's group may take: the snapped ones where a granule applies."""
        return self.channel_keep.values() if self.snapped_keep is None else self.snapped_keep


@dataclass(frozen=True, kw_only=True)
class LayerPolicy:
    """How one layer is compressed."""

    sparsity: float
    channel_keep: float
    weight_bits: int
    activation_bits: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise SpecError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 < self.channel_keep <= 1.0:
            raise SpecError(f"channel_keep must be in (0, 1], got {self.channel_keep}")
        check_bits("weight_bits", (self.weight_bits,), WEIGHT_BITS)
        check_bits("activation_bits", (self.activation_bits,), ACTIVATION_BITS)


UNCOMPRESSED = LayerPolicy(sparsity=0.0, channel_keep=1.0, weight_bits=32, activation_bits=32)
