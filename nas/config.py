"""The configuration of a search, validated once and stored with the study so runs can resume and be reproduced."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.objectives import ACCURACY, DEVICE_TERMS, SIZE_TERMS, SPARSITY_TERMS, cost_terms, term

# Adam's rate for training a baseline from scratch; a family that trains clearly better at another rate declares
# it in its spec (measured per family: benchmarks/baseline_rates.py).
DEFAULT_TRAIN_LEARNING_RATE = 3e-3


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Baseline training hyper-parameters.

    ``learning_rate=None`` takes the rate the model spec declares (``train_learning_rate``), else
    ``DEFAULT_TRAIN_LEARNING_RATE`` (``rate``); a study stores the ``resolved`` form.
    """

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float | None = None
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not (self.learning_rate is None or self.learning_rate > 0):
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0")

    def rate(self, declared_rate: float | None) -> float:
        """The rate to train at: the one given, else the spec's ``declared_rate``, else the default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return declared_rate or DEFAULT_TRAIN_LEARNING_RATE

    def resolved(self, declared_rate: float | None) -> TrainConfig:
        """This config with its rate fixed (``rate``). The resolved form is what a study stores and a baseline's
        cache key hashes, so a family whose spec declares no rate keeps the identity it had before."""
        return replace(self, learning_rate=self.rate(declared_rate))


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Fine-tuning hyper-parameters (steps and batch chosen by ``benchmarks/search_throughput.py``).

    ``learning_rate=None`` chooses the rate per model, by a short sweep on the baseline before the search
    (``nas.training.learning_rate``); a number fixes it. ``targets`` is what a candidate is trained toward: the
    uncompressed model's output distribution (``teacher``, the default) or the labels (``labels``, as studies
    created before it was a setting did; see ``nas.training.finetune.teacher_targets``).
    """

    steps: int = 300
    batch_size: int = 128
    learning_rate: float | None = None
    targets: str = "teacher"
    calibration_size: int = 512
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or not (self.learning_rate is None or self.learning_rate > 0):
            raise ValueError("steps must be >= 0, batch_size >= 1 and learning_rate > 0 (or None: chosen)")
        if self.targets not in FINETUNE_TARGETS:
            raise ConfigError(f"unknown fine-tuning targets {self.targets!r}; use {' or '.join(FINETUNE_TARGETS)}")


FINETUNE_TARGETS = ("teacher", "labels")


def finetune_config(steps: int | None, learning_rate: float | None, targets: str | None = None) -> FinetuneConfig:
    """The fine-tuning settings with the defaults where an argument is None (the rate: chosen)."""
    config = FinetuneConfig(learning_rate=learning_rate)
    if steps is not None:
        config = replace(config, steps=steps)
    return config if targets is None else replace(config, targets=targets)


SAMPLERS = ("tpe", "nsga2", "random", "gp")
DEFAULT_SAMPLER = "tpe"


HOST_LATENCIES = ("auto", "predicted", "measured")
TIMED_TERMS = ("latency_ms", "energy_mj")  # the terms a timed trial figure changes
HOST_LATENCY_VARIABLE = "NAS_HOST_LATENCY"  # the default of --host-latency
UNSNAPPED_BEFORE_GRANULES = ("ethos_u55_128", "ethos_u65_256")  # the profiles that came with a channel granule


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Everything that determines a study's results (the trial count excepted: it may grow on resume)."""

    model: str = "cnn"
    weights: str | None = None  # a discovered user model's folded weights: its baseline, never retrained
    width_multiplier: float | None = None
    dataset: str = "digits"
    space: dict[str, Any] | None = None
    objectives: tuple[str, ...] = ("accuracy", "latency_ms")
    budgets: dict[str, float] = field(default_factory=dict)
    device: str = "host"
    kernel_set: str | None = None
    search_sparsity: bool | None = None
    channel_norm: str = "l2"
    # Channel keep ratios snap to whole blocks of the device's channel granule (a device without one: no change).
    snap_channels: bool = True
    sampler: str = DEFAULT_SAMPLER
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # Each fine-tuned trial is exported and run in LiteRT; one that diverges from its JAX model is infeasible.
    verify_trials: bool = True
    # How a host study's trials get their latency: the host tables' prediction, or their exported file timed on
    # this machine in the trial (``nas.runtime.host_timing``). Only a device measurable here can be timed;
    # ``auto`` is measured where the device is this host and latency is searched, predicted elsewhere (a study
    # stores the setting it ran with, and a resumed study keeps it).
    host_latency: str = "auto"

    def __post_init__(self) -> None:
        for name in (*self.objectives, *self.budgets):
            term(name)  # unknown names raise, listing the known ones
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives {','.join(self.objectives)} name a term twice")
        if self.objectives[:1] != (ACCURACY,) or not cost_terms(self.objectives):
            raise ConfigError("objectives must start with accuracy and name a cost term, e.g. accuracy,stored_bytes")
        if self.weights is not None and self.width_multiplier is not None:
            raise ConfigError("--width applies to the built-in families only, not to a model with its own weights")
        if self.host_latency not in HOST_LATENCIES:
            raise ConfigError(f"--host-latency must be one of {', '.join(HOST_LATENCIES)}, got {self.host_latency!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; use one of {', '.join(SAMPLERS)}")
        for name, limit in self.budgets.items():
            if name == ACCURACY or not limit > 0:
                flag = term(name).budget_flag or name
                raise ConfigError(f"{flag} must be a positive cost budget, got {term(name).budget_display(limit):g}")

    @property
    def size_term(self) -> str:
        """The size term a size budget applies to: the first size objective, else the stored size."""
        return next((o for o in self.objectives if o in SIZE_TERMS), "stored_bytes")

    @property
    def uses_device(self) -> bool:
        """Whether an objective or budget needs the device's cost model."""
        return any(name in DEVICE_TERMS for name in (*self.objectives, *self.budgets))

    @property
    def searches_sparsity(self) -> bool:
        """Whether unstructured sparsity is searched: when asked, else when a chosen figure rewards it.

        Only the entropy-coded size falls with unstructured sparsity: the file stores zeros densely, and the
        runtime's kernels skip none of them (XNNPACK turns sparse inference off on x86 CPUs with AVX), so
        for latency, RAM, flash or stored size the knob would only cost accuracy.
        """
        if self.search_sparsity is not None:
            return self.search_sparsity
        return any(name in SPARSITY_TERMS for name in (*self.objectives, *self.budgets))

    @property
    def cost_objectives(self) -> tuple[str, ...]:
        """The objectives other than accuracy."""
        return cost_terms(self.objectives)

    def to_json(self) -> str:
        """Canonical JSON form, stored as a study attribute."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SearchConfig:
        """Inverse of ``to_json``."""
        raw = json.loads(text)
        raw["objectives"] = tuple(raw["objectives"])
        legacy_size_kb = raw.pop("max_size_kb", None)  # studies created before budgets were generic
        if legacy_size_kb is not None:
            size = next((o for o in raw["objectives"] if o in SIZE_TERMS), "stored_bytes")
            raw["budgets"] = {size: term(size).to_raw(legacy_size_kb)}
        if "device" not in raw:  # studies created before device costs searched sparsity with any objective
            raw["search_sparsity"] = True
        raw["train"] = TrainConfig(**raw["train"])
        # Studies created before the targets were a setting fine-tuned toward the labels, and resume so.
        raw["finetune"] = FinetuneConfig(**{"targets": "labels", **raw["finetune"]})
        # Studies created before snapping did not snap, which differs only on the Ethos-U profiles (the devices
        # with a channel granule then): theirs resume unsnapped; any other resumes under the default, a no-op there.
        raw.setdefault("snap_channels", raw.get("device", "host") not in UNSNAPPED_BEFORE_GRANULES)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def settled(self, measurable_here: bool, stored: SearchConfig | None = None) -> SearchConfig:
        """This config with ``host_latency`` ``auto`` settled: a resumed study's own setting (``stored``), else
        measured where the device is measurable here and latency (or energy, which follows it) is a term, unless
        ``$NAS_HOST_LATENCY`` is ``predicted`` (a machine too busy to time, a suite that wants fixed figures)."""
        if self.host_latency != "auto":
            return self
        if stored is not None:
            return replace(self, host_latency=stored.host_latency)
        chosen = os.environ.get(HOST_LATENCY_VARIABLE, "").strip() or "auto"
        if chosen not in HOST_LATENCIES:
            raise ConfigError(f"{HOST_LATENCY_VARIABLE} must be one of {', '.join(HOST_LATENCIES)}, got {chosen!r}")
        timed = measurable_here and any(name in TIMED_TERMS for name in (*self.objectives, *self.budgets))
        return replace(self, host_latency="measured" if timed and chosen != "predicted" else "predicted")

    def differences(self, other: SearchConfig) -> list[str]:
        """Names of the settings in which two configs differ; within the training and fine-tuning settings, the
        field that differs (``finetune.targets``), so a refused resume says which flag to give."""
        mine, theirs = asdict(self), asdict(other)
        changed = []
        for key in mine:
            if mine[key] == theirs[key]:
                continue
            if is_dataclass(getattr(self, key)):
                changed += [f"{key}.{name}" for name in mine[key] if mine[key][name] != theirs[key][name]]
            else:
                changed.append(key)
        return changed


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Reads a search-space JSON file into the dict stored in the config (validated by ``SearchSpace``)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"search space file {str(path)!r} does not exist") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"search space file {str(path)!r} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"search space file {str(path)!r} must hold a JSON object")
    return raw
