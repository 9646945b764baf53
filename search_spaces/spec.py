"""Model families as data: a small graph of named nodes, loaded from JSON and validated once.

A spec names its nodes, their operation and their inputs (the previous node by default, ``"input"`` for the
model input). ``features: "classes"`` stands for the class count, known only once a dataset is chosen.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces.errors import SpecError

MODELS_DIR = Path(__file__).parent / "models"
COMPRESSIBLE_OPS = ("conv", "dwconv", "dense")
SHAPE_OPS = ("flatten", "global_avg_pool", "avg_pool", "max_pool", "add")
FLOAT_OP = "float"  # a region of a user's model the search cannot compress: it runs as traced, in float
ACTIVATIONS = (None, "relu", "relu6")
_NODE_KEYS = {"name", "op", "inputs", "features", "kernel", "stride", "padding", "bn", "act", "window"}
_FLOAT_KEYS = {"shape", "function", "reason", "macs", "float_weights"}


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """One node of a model graph. ``features`` is an int, or ``None`` when it means the class count."""

    name: str
    op: str
    inputs: tuple[str, ...]
    features: int | None = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    bn: bool = False
    act: str | None = None
    window: tuple[int, int] = (2, 2)
    # A float region only: its output shape (no batch axis), the digest of its traced function, why it stays
    # float, its multiply-accumulates (elementwise steps count one each) and its float weights.
    shape: tuple[int, ...] = ()
    function: str = ""
    reason: str = ""
    macs: int = 0
    float_weights: int = 0

    def __post_init__(self) -> None:
        if self.op not in (*COMPRESSIBLE_OPS, *SHAPE_OPS, FLOAT_OP):
            raise SpecError(
                f"node {self.name!r}: unknown op {self.op!r}; use one of {', '.join(COMPRESSIBLE_OPS + SHAPE_OPS)}"
            )
        if self.op == FLOAT_OP:
            if not self.shape or not self.function or not self.inputs or min(self.shape) < 1:
                raise SpecError(f"node {self.name!r}: a float region needs inputs, an output shape and a function")
            return
        if self.act not in ACTIVATIONS:
            raise SpecError(f"node {self.name!r}: unknown act {self.act!r}; use relu, relu6 or leave it out")
        if self.padding not in ("SAME", "VALID"):
            raise SpecError(f"node {self.name!r}: padding must be SAME or VALID, not {self.padding!r}")
        if self.op == "add" and len(self.inputs) < 2:
            raise SpecError(f"node {self.name!r}: add needs at least two inputs")
        if self.op != "add" and len(self.inputs) != 1:
            raise SpecError(f"node {self.name!r}: op {self.op} takes exactly one input")
        if self.bn and self.op not in ("conv", "dwconv", "dense"):
            raise SpecError(f"node {self.name!r}: bn is only supported after conv, dwconv and dense")

    @property
    def is_compressible(self) -> bool:
        """Whether the node carries weights that the search prunes and quantizes."""
        return self.op in COMPRESSIBLE_OPS


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model family: nodes in execution order plus default per-layer rules (raw dicts, see ``space.py``)."""

    name: str
    description: str
    nodes: tuple[NodeSpec, ...]
    rules: tuple[dict[str, Any], ...] = ()
    width_multiplier: float = 1.0
    # A strided conv whose output would be narrower than this many pixels keeps stride 1 along that axis, so a
    # family designed for large inputs (MobileNet downsamples 32x) keeps a feature map on small ones (8x8).
    min_feature_size: int = 1
    # Adam's rate for training this family from scratch, when it trains best away from the trainer's default
    # (None: the default). Part of the family as the reference recipe is; a given rate overrides it.
    train_learning_rate: float | None = None
    classifier: bool = True  # False only for profiling micro-models (one op to time), which may end anywhere

    def __post_init__(self) -> None:
        seen = {"input"}
        for node in self.nodes:
            if node.name in seen:
                raise SpecError(f"model {self.name!r}: node name {node.name!r} is used twice (or is 'input')")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise SpecError(
                    f"model {self.name!r}: node {node.name!r} reads {missing[0]!r}, which is not defined before it"
                )
            seen.add(node.name)
        if not self.nodes:
            raise SpecError(f"model {self.name!r} has no nodes")
        if self.classifier and (not self.nodes[-1].is_compressible or self.nodes[-1].features is not None):
            raise SpecError(f"model {self.name!r}: the last node must be a dense layer with features 'classes'")
        if not 0 < self.width_multiplier <= 4:
            raise SpecError(f"model {self.name!r}: width_multiplier must be in (0, 4]")
        if isinstance(self.min_feature_size, bool) or not isinstance(self.min_feature_size, int):
            raise SpecError(f"model {self.name!r}: min_feature_size must be a positive integer")
        if self.min_feature_size < 1:
            raise SpecError(f"model {self.name!r}: min_feature_size must be a positive integer")
        rate = self.train_learning_rate
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1):
            raise SpecError(f"model {self.name!r}: train_learning_rate must be a number in (0, 1], got {rate!r}")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the identity of the spec for caching and provenance."""
        return json.dumps(_spec_to_dict(self), sort_keys=True, separators=(",", ":"))


def available_models() -> list[str]:
    """Names of the model families that ship with the package."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def load_model_spec(name_or_path: str, *, width_multiplier: float | None = None) -> ModelSpec:
    """Loads a built-in family by name, or a spec from a JSON file path.

    Raises:
        SpecError: unknown name, unreadable file or invalid spec; the message says how to fix it.
    """
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = MODELS_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise SpecError(
                f"unknown model {name_or_path!r}; use one of {', '.join(available_models())} or a spec .json file"
            )
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"model spec file {str(path)!r} does not exist") from None
    except (OSError, json.JSONDecodeError) as err:
        raise SpecError(f"model spec {str(path)!r} is not valid JSON: {err}") from None
    if width_multiplier is not None:
        raw["width_multiplier"] = width_multiplier
    return spec_from_dict(raw)


def spec_from_dict(raw: dict[str, Any]) -> ModelSpec:
    """Builds a validated ``ModelSpec`` from its JSON form, applying the width multiplier to channel counts."""
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
        raise SpecError("a model spec must be a JSON object with a 'nodes' list")
    width = raw.get("width_multiplier", 1.0)
    if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 4:
        raise SpecError(f"width_multiplier must be a number in (0, 4], got {width!r}")
    width = float(width)
    nodes: list[NodeSpec] = []
    previous = "input"
    for item in raw["nodes"]:
        node = _node_from_dict(item, previous, width)
        nodes.append(node)
        previous = node.name
    return ModelSpec(
        name=str(raw.get("name", "custom")),
        description=str(raw.get("description", "")),
        nodes=tuple(nodes),
        rules=tuple(raw.get("rules", ())),
        width_multiplier=width,
        min_feature_size=raw.get("min_feature_size", 1),
        train_learning_rate=raw.get("train_learning_rate"),
        classifier=bool(raw.get("classifier", True)),
    )


def _node_from_dict(item: dict[str, Any], previous: str, width: float) -> NodeSpec:
    if not isinstance(item, dict) or "name" not in item or "op" not in item:
        raise SpecError(f"every node needs a 'name' and an 'op'; got {item!r}")
    if item["op"] == FLOAT_OP:
        return _float_node_from_dict(item, previous)
    unknown = set(item) - _NODE_KEYS
    if unknown:
        raise SpecError(f"node {item['name']!r}: unknown keys {sorted(unknown)}; allowed: {sorted(_NODE_KEYS)}")
    features = item.get("features")
    if features == "classes":
        features = None
    elif features is not None:
        if not isinstance(features, int) or features < 1:
            raise SpecError(f"node {item['name']!r}: features must be a positive integer or 'classes'")
        features = max(1, math.floor(features * width + 0.5))
    elif item["op"] in ("conv", "dense"):
        raise SpecError(f"node {item['name']!r}: op {item['op']} needs 'features'")
    return NodeSpec(
        name=str(item["name"]),
        op=str(item["op"]),
        inputs=tuple(item.get("inputs", [previous])),
        features=features,
        kernel=_pair(item, "kernel", 1),
        stride=_pair(item, "stride", 1),
        padding=str(item.get("padding", "SAME")),
        bn=bool(item.get("bn", False)),
        act=item.get("act"),
        window=_pair(item, "window", 2),
    )


def _float_node_from_dict(item: dict[str, Any], previous: str) -> NodeSpec:
    unknown = set(item) - {"name", "op", "inputs"} - _FLOAT_KEYS
    if unknown:
        raise SpecError(f"node {item['name']!r}: unknown keys {sorted(unknown)} for a float region")
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise SpecError(f"node {item['name']!r}: a float region's shape must be a list of positive integers")
    counts = [item.get(key, 0) for key in ("macs", "float_weights")]
    if not all(isinstance(c, int) and c >= 0 for c in counts):
        raise SpecError(f"node {item['name']!r}: macs and float_weights must be non-negative integers")
    return NodeSpec(
        name=str(item["name"]),
        op=FLOAT_OP,
        inputs=tuple(item.get("inputs", [previous])),
        shape=tuple(shape),
        function=str(item.get("function", "")),
        reason=str(item.get("reason", "")),
        macs=counts[0],
        float_weights=counts[1],
    )


def _pair(item: dict[str, Any], key: str, default: int) -> tuple[int, int]:
    value = item.get(key, default)
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise SpecError(f"node {item.get('name')!r}: {key} must be a positive int or a pair of them")
    return pair


def _spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    nodes = [
        _float_node_to_dict(n)
        if n.op == FLOAT_OP
        else {
            "name": n.name,
            "op": n.op,
            "inputs": list(n.inputs),
            "features": "classes" if n.features is None else n.features,
            "kernel": list(n.kernel),
            "stride": list(n.stride),
            "padding": n.padding,
            "bn": n.bn,
            "act": n.act,
            "window": list(n.window),
        }
        for n in spec.nodes
    ]
    # Channel counts already carry the width multiplier, so it is not part of the identity.
    identity: dict[str, Any] = {"name": spec.name, "nodes": nodes, "rules": list(spec.rules)}
    if spec.min_feature_size != 1:  # absent when unused, so the identity of every other spec is unchanged
        identity["min_feature_size"] = spec.min_feature_size
    if spec.train_learning_rate is not None:
        identity["train_learning_rate"] = spec.train_learning_rate
    return identity


def _float_node_to_dict(node: NodeSpec) -> dict[str, Any]:
    return {
        "name": node.name,
        "op": node.op,
        "inputs": list(node.inputs),
        "shape": list(node.shape),
        "function": node.function,
        "reason": node.reason,
        "macs": node.macs,
        "float_weights": node.float_weights,
    }
