"""Tie-aware verification and budgets at their exact limits: the judgement rules, on hand-made figures."""

import numpy as np
import pytest

from latency_models.device import load_device
from latency_models.size import stored_bytes
from nas.objectives import budget_violations
from nas.runtime.verify import AccuracyBar, Flip, KernelCheck, Reference, minimum_bar, reference_bar
from nas.search.context import Problem, SearchContext
from nas.search.objective import within_budgets
from nas.training.learning_rate import RateChoice
from search_spaces.space import Candidate, SearchSpace

LOGITS = np.array(
    [
        [2.0, 2.0, 0.0],  # a tie between classes 0 and 1
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 3.0],
        [1.0, 0.0, 1.0],  # a tie between classes 0 and 2
    ]
)
LABELS = np.array([1, 1, 0, 2])


def test_a_prediction_among_tied_top_classes_agrees():
    reference = Reference(logits=LOGITS, labels=LABELS)
    assert reference.top.sum(1).tolist() == [2, 1, 1, 2]
    assert reference.agreement(np.array([0, 1, 2, 2])) == 1.0  # either tied class is fine
    assert reference.agreement(np.array([2, 1, 2, 1])) == 0.5  # class 2 is not tied at the top of row 0


def test_jax_accuracy_interval_resolves_ties_against_and_for_the_label():
    # Row 1 is right outright; rows 0 and 3 are right only if the tie goes the label's way; row 2 is wrong.
    assert Reference(logits=LOGITS, labels=LABELS).accuracy_bounds == (0.25, 0.75)


def _check(accuracy: float, flipped: int, bar: AccuracyBar | None, examples: int = 400) -> KernelCheck:
    flip = Flip(index=0, label=0, expected=0, predicted=1)
    return KernelCheck(
        delegate="builtin",
        accuracy=accuracy,
        agreement=None,
        kernel_agreement=None,
        bar=bar,
        latency=None,
        examples=examples,
        flips=(flip,) * flipped,
    )


def test_a_check_passes_only_inside_the_widened_interval_with_at_most_the_allowed_flips():
    reference = Reference(logits=np.tile(LOGITS, (100, 1)), labels=np.tile(LABELS, 100))
    bar = reference_bar(reference)  # [0.25, 0.75] +- 4/400: as far as the 4 flips allowed of 400 can move it
    assert bar.tolerance == pytest.approx(0.01)
    assert _check(0.25 - 0.009, 0, bar).passed and _check(0.75 + 0.009, 0, bar).passed
    assert not _check(0.25 - 0.011, 0, bar).passed and not _check(0.75 + 0.011, 0, bar).passed
    assert _check(0.5, 4, bar).passed and not _check(0.5, 5, bar).passed


def test_without_a_bar_nothing_passes_and_without_jax_the_kernels_may_flip_as_few():
    assert not _check(0.99, 0, None).passed  # runs and loads, but accuracy was judged against nothing
    bar = minimum_bar(0.9, "--min-accuracy 0.9")
    assert _check(0.9, 0, bar).passed and not _check(0.8999, 0, bar).passed
    assert _check(0.95, 2, bar).passed  # flips against the first kernel set's predictions, without JAX's
    assert not _check(0.95, 8, bar).passed


def test_budget_violations_are_relative_and_zero_at_the_limit():
    metrics = {"stored_bytes": 1000.0, "compressed_bytes": 500.0}
    assert budget_violations({"stored_bytes": 1000.0}, metrics) == {"stored_bytes": 0.0}
    assert budget_violations({"stored_bytes": 999.0, "compressed_bytes": 1000.0}, metrics) == pytest.approx(
        {"stored_bytes": 1 / 999, "compressed_bytes": -0.5}
    )


def test_a_candidate_exactly_at_the_size_budget_is_trained_and_one_byte_under_it_is_not(
    cnn_graph, cnn_baseline, cnn_trainer, digits, digits_on_device, tmp_path
):
    from nas.config import SearchConfig

    candidate = Candidate.uniform(cnn_graph, weight_bits=8, activation_bits=8)
    size = float(stored_bytes(cnn_graph, candidate))

    def context(limit: float, class_drop: float = 0.5) -> SearchContext:
        budgets = {"stored_bytes": limit, "class_drop": class_drop}
        problem = Problem(
            config=SearchConfig(objectives=("accuracy", "stored_bytes"), budgets=budgets),
            graph=cnn_graph,
            space=SearchSpace(),
            dataset=digits,
            device=load_device("host"),
            cost_model=None,
        )
        x, y = digits_on_device
        return SearchContext(
            problem=problem,
            trainer=cnn_trainer,
            baseline=cnn_baseline,
            baseline_val_per_class=(1.0,) * 10,
            finetune_rate=RateChoice(learning_rate=1e-3, source="given", scores={}),
            x_train=x,
            targets=y,
            results_dir=tmp_path,
        )

    assert within_budgets(context(size), candidate)
    assert not within_budgets(context(size - 1), candidate)
    # A class-drop budget is known only after fine-tuning: it never keeps a candidate from being trained.
    assert within_budgets(context(size, class_drop=1e-9), candidate)
