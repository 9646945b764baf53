"""Mixed precision: a weight and an activation bit width per layer, one categorical knob (``w8a16``), so that
combinations the runtime or the device cannot run are never proposed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from search_spaces.errors import SpecError
from search_spaces.graph import LayerSpec, ModelGraph
from search_spaces.policy import LayerChoices, LayerPolicy
from search_spaces.runtime_support import runs_correctly
from search_spaces.techniques.base import CandidateLike, Technique, TrialLike


def precision_label(weight_bits: int, activation_bits: int) -> str:
    """The categorical value for a precision, e.g. ``w8a16``."""
    return f"w{weight_bits}a{activation_bits}"


def parse_precision(label: str) -> tuple[int, int]:
    """Inverse of ``precision_label``."""
    match = re.fullmatch(r"w(\d+)a(\d+)", label)
    if not match:
        raise SpecError(f"precision {label!r} is not of the form w<bits>a<bits>")
    return int(match.group(1)), int(match.group(2))


def bit_list(value: Any) -> tuple[int, ...]:
    """A JSON list of bit widths: integers only (4.5 is refused, never truncated to 4)."""
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise SpecError(f"bit widths must be a list of integers, got {value!r}")
    return tuple(value)


class Precision(Technique):
    """Weight and activation bit widths of one layer."""

    name = "precision"
    space_keys = ("weight_bits", "activation_bits")
    policy_fields = ("weight_bits", "activation_bits")
    param_suffix = "precision"
    uncompressed: ClassVar[Mapping[str, Any]] = {"weight_bits": 32, "activation_bits": 32}
    export_step = "per_layer_quantization"
    array_keys = ("weight_bits", "activation_bits")
    uncompressed_fill: ClassVar[Mapping[str, float]] = {"weight_bits": 32, "activation_bits": 32}
    key_fields = ("weight_bits", "activation_bits")
    figures = frozenset({"stored_bytes", "compressed_bytes", "ram_bytes"})

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return {key: bit_list(raw[key]) for key in self.space_keys if raw.get(key) is not None}

    def layer_choices(
        self,
        settings: Mapping[str, Any],
        layer: LayerSpec,
        device_precisions: Mapping[str, Any] | None,
        channel_granule: int = 1,
    ) -> dict[str, Any]:
        w_bits, a_bits = settings["weight_bits"], settings["activation_bits"]
        device = None if device_precisions is None else set(device_precisions.get(layer.runtime_op, ()))
        precisions = tuple(
            (w, a)
            for w in sorted(w_bits)
            for a in sorted(a_bits)
            if runs_correctly(layer.runtime_op, w, a) and (device is None or (w, a) in device)
        )
        if not precisions:
            raise SpecError(
                f"layer {layer.name!r} ({layer.runtime_op}) has no precision the target runs: weight bits {w_bits} x "
                f"activation bits {a_bits}; allow 8-bit weights or float activations for it, or pick another device"
            )
        return {"precisions": precisions}

    def values(self, choices: LayerChoices) -> tuple[str, ...]:
        return tuple(precision_label(w, a) for w, a in choices.precisions)

    def policy_values(self, value: Any) -> dict[str, Any]:
        weight_bits, activation_bits = parse_precision(value)
        return {"weight_bits": weight_bits, "activation_bits": activation_bits}

    def param_value(self, policy: LayerPolicy) -> str:
        return precision_label(policy.weight_bits, policy.activation_bits)

    def suggest(self, trial: TrialLike, name: str, choices: LayerChoices) -> str:
        return trial.suggest_categorical(name, list(self.values(choices)))

    def reference(self, values: tuple[Any, ...]) -> str:
        return max(values, key=parse_precision)

    def describe(self, policy: LayerPolicy) -> str:
        return self.param_value(policy)

    def arrays(
        self,
        graph: ModelGraph,
        params: Mapping[str, Any],
        candidate: CandidateLike,
        built: Mapping[str, Any],
        **options: Any,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Each layer's bit widths, as traced values: one compiled function serves every precision."""
        policies = {layer.name: candidate.policy(layer.name) for layer in graph.compressible}
        return {
            key: {name: np.asarray(getattr(policy, key), np.int32) for name, policy in policies.items()}
            for key in self.array_keys
        }
