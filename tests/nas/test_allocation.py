"""The HAWQ-style allocation and the diagnostics: knobs, measured sensitivity, the greedy rule under a budget,
and the ranking on a model with a layer that does not matter."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nas.analysis.diagnostics import diagnose, moves_frame
from nas.config import FinetuneConfig, SearchConfig, TrainConfig
from nas.search.allocation import Knobs, allocate, candidate_of, knobs, measure_sensitivity
from nas.search.context import build_context, resolve_problem
from nas.search.objective import device_cost
from search_spaces.techniques.precision import parse_precision

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory):
    # A given rate: nothing here fine-tunes, so the rate sweep before a search would be time spent on nothing.
    config = SearchConfig(train=TrainConfig(epochs=10), finetune=FinetuneConfig(steps=20, learning_rate=1e-3))
    return build_context(resolve_problem(config), results_dir=tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def measured(context):
    found = knobs(context)
    return found, measure_sensitivity(context, found)


def _latency(context, params) -> float:
    return device_cost(context, candidate_of(context, params)).latency_ms.value


def test_knobs_start_from_the_widest_precision_and_every_channel(measured):
    found, sensitivity = measured
    assert {"conv1.precision", "conv2.precision", "fc.precision"} <= set(found.options)
    assert all(parse_precision(found.reference[f"{n}.precision"]) == (32, 32) for n in ("conv1", "conv2", "fc"))
    assert all(value == 1.0 for name, value in found.reference.items() if name.endswith(".keep"))
    assert all(sensitivity[(name, value)] == 0.0 for name, value in found.reference.items())
    # Fewer bits cost accuracy: 4-bit weights lose more than 8-bit ones, on average over the layers.
    four = [v for (name, value), v in sensitivity.items() if name.endswith("precision") and value.startswith("w4")]
    eight = [v for (name, value), v in sensitivity.items() if name.endswith("precision") and value.startswith("w8")]
    assert sum(four) / len(four) > sum(eight) / len(eight)


def test_the_allocation_meets_a_budget_or_says_it_cannot(context, measured):
    found, sensitivity = measured
    reference = _latency(context, found.reference)
    assert allocate(context, found, sensitivity, {"latency_ms": reference * 1.01}) == found.reference
    assert allocate(context, found, sensitivity, {"latency_ms": reference * 1e-6}) is None
    params = allocate(context, found, sensitivity, {"latency_ms": reference * 0.5})
    assert params is not None and _latency(context, params) <= reference * 0.5


def test_the_rule_moves_the_knob_that_costs_no_accuracy_first(context, measured):
    found, sensitivity = measured
    # Make every knob but conv2's precision costly: the first move must be conv2's.
    start = set(found.reference.items())
    rigged = {key: 0.0 if key[0] == "conv2.precision" or key in start else 1.0 for key in sensitivity}
    reference = _latency(context, found.reference)
    params = allocate(context, found, rigged, {"latency_ms": reference * 0.999})
    assert params is not None
    assert [name for name in params if params[name] != found.reference[name]] == ["conv2.precision"]


def test_diagnostics_find_the_layer_that_does_not_matter(tmp_path_factory):
    """ResNet-8 on digits with its first residual branch silenced (the second conv's weights scaled to almost
    nothing): moving that branch's knobs costs no accuracy, while pruning channels that carry signal does."""
    config = SearchConfig(
        model="resnet8", train=TrainConfig(epochs=10), finetune=FinetuneConfig(steps=20, learning_rate=1e-3)
    )
    context = build_context(resolve_problem(config), results_dir=tmp_path_factory.mktemp("results"))
    params = {name: dict(layer) for name, layer in context.baseline.params.items()}
    params["b1_conv2"] = {"kernel": params["b1_conv2"]["kernel"] * 1e-4, "bias": params["b1_conv2"]["bias"] * 0}
    silenced = replace(context, baseline=replace(context.baseline, params=params))
    # Every channel group, and the silenced block's own knobs: what the assertions rank (the whole space would
    # score about 250 single-knob moves; this, about 90).
    every = knobs(silenced, every_technique=True)
    ranked = {
        k: v if k.endswith(".keep") or k.startswith("b1_") else (every.reference[k],) for k, v in every.options.items()
    }
    moves = diagnose(silenced, Knobs(options=ranked))
    floor = 1.0 / len(context.problem.dataset.y_val)
    branch = [m for m in moves if m.knob in ("b1_conv1.precision", "b1_conv2.precision", "b1_conv1.keep")]
    needed = [m for m in moves if m.knob in ("stem.keep", "b2_conv1.keep")]  # pruning channels that carry signal
    assert branch and max(m.accuracy_drop for m in branch) <= 2 * floor
    assert sorted(m.accuracy_drop for m in needed)[len(needed) // 2] > 2 * floor
    assert next(m for m in moves if m.knob.endswith(".keep")).knob == "b1_conv1.keep"  # pruned first
    assert moves_frame(moves)["saved_per_point"].is_monotonic_decreasing
