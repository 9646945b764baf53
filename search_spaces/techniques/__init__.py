"""The registry of compression techniques (``base.Technique``): every knob family the search offers.

A new technique is one module here (its ``Technique`` subclass: knobs, arrays of the compressed model, its
share of the cost keys and figures, the name of its export step), its entry in ``TECHNIQUES`` and its
``LayerPolicy`` / ``LayerChoices`` / ``SearchSpace`` fields; the space's JSON keys, the Optuna round trip, the
allocation, ``nas analyze``, the layer plots and ``build_compression`` pick it up from the registry. What
stays outside it: how its arrays act in the forward pass (``nas.compress.models``), how a cost key's fields
become a latency (each cost-model kind), and how each runtime does its export step (``WEIGHT_STEPS`` in
``nas.compress.shrink``, ``FILE_STEPS`` in ``nas.runtime.export``), since those belong to the model, the
device and the runtime; the contract test fails until each is there.
"""

from __future__ import annotations

from search_spaces.errors import SpecError
from search_spaces.techniques.base import Technique
from search_spaces.techniques.channel_keep import ChannelKeep
from search_spaces.techniques.precision import Precision
from search_spaces.techniques.sparsity import Sparsity

# Order: how a trial's summary and the layer plots list them; group-scoped knobs are suggested first.
TECHNIQUES: tuple[Technique, ...] = (Precision(), Sparsity(), ChannelKeep())


def technique_of_param(name: str) -> Technique:
    """The technique an Optuna parameter (``<layer>.<suffix>``) belongs to."""
    suffix = name.rsplit(".", 1)[-1]
    for technique in TECHNIQUES:
        if technique.param_suffix == suffix:
            return technique
    raise SpecError(f"parameter {name!r} belongs to no compression technique")


def space_keys() -> tuple[str, ...]:
    """Every knob key a search space or a rule may set."""
    return tuple(key for technique in TECHNIQUES for key in technique.space_keys)


def policy_fields() -> tuple[str, ...]:
    """Every ``LayerPolicy`` field a technique sets, in registry order."""
    return tuple(field for technique in TECHNIQUES for field in technique.policy_fields)


def technique_of_field(field: str) -> Technique:
    """The technique that sets ``LayerPolicy`` field ``field``."""
    for technique in TECHNIQUES:
        if field in technique.policy_fields:
            return technique
    raise SpecError(f"no compression technique sets the policy field {field!r}")
