import numpy as np
import pandas as pd
import pytest

from nas.analysis.pareto import front_frame, hypervolume_2d, knee_point, pareto_mask
from nas.analysis.plots import layer_view_data, pareto_plot_data


def test_pareto_mask_on_hand_made_points():
    values = np.array([[0.9, 100], [0.8, 50], [0.85, 120], [0.8, 50], [0.95, 200], [0.7, 60]])
    mask = pareto_mask(values, ["maximize", "minimize"])
    # [0.85, 120] is dominated by [0.9, 100]; [0.7, 60] by [0.8, 50]; exact duplicates both stay.
    assert mask.tolist() == [True, True, False, True, True, False]
    assert pareto_mask(np.zeros((0, 2)), ["maximize", "minimize"]).shape == (0,)


def _frame():
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4],
            "state": ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL", "COMPLETE"],
            "accuracy": [0.9, 0.95, 0.99, 1.0, 0.5],
            "stored_bytes": [1000.0, 3000.0, 500.0, 10.0, 100.0],
            "feasible": [True, True, False, True, True],
            "conv1.weight_bits": [8, 32, 4, 8, 4],
            "conv1.activation_bits": [8, 32, 8, 8, 8],
            "conv1.sparsity": [0.1, 0.0, 0.9, 0.0, 0.5],
            "conv1.channel_keep": [1.0, 1.0, 0.25, 1.0, 0.5],
        }
    )


def test_front_keeps_only_complete_feasible_non_dominated_trials_sorted_by_size():
    front = front_frame(_frame(), ("accuracy", "stored_bytes"))
    assert front["number"].tolist() == [4, 0, 1]  # 2 is over budget, 3 failed


def test_plot_data_scales_sizes_and_orders_the_front():
    trials = _frame()
    front = front_frame(trials, ("accuracy", "stored_bytes"))
    data = pareto_plot_data(trials, front, "stored_bytes", {"val_accuracy": 0.97, "stored_bytes": 4000})
    assert data.front_x.tolist() == [0.1, 1.0, 3.0] and data.front_y.tolist() == [0.5, 0.9, 0.95]
    assert len(data.trial_x) == 4 and data.trial_feasible.tolist() == [True, True, False, True]
    assert (data.baseline_x, data.baseline_y) == (4.0, 0.97)
    assert data.x_label == "stored size (KB), exact" and data.staircase.all()
    view = layer_view_data(front, ["conv1"])
    assert view.members == ("#4", "#0", "#1")
    assert view.values["weight_bits"][:, 0].tolist() == [4, 8, 32]
    assert view.values["sparsity"].shape == (3, 1)


def test_hypervolume_of_hand_made_fronts():
    assert hypervolume_2d(np.array([[0.5, 0.5]]), (1.0, 1.0)) == 0.25
    # Two steps: [0.2, 0.6] and [0.6, 0.2] -> 0.8 * 0.4 + 0.4 * 0.4; dominated and outside points add nothing.
    points = np.array([[0.2, 0.6], [0.6, 0.2], [0.7, 0.7], [1.5, 0.1]])
    assert hypervolume_2d(points, (1.0, 1.0)) == 0.8 * 0.4 + 0.4 * 0.4
    assert hypervolume_2d(np.zeros((0, 2)), (1.0, 1.0)) == 0.0


def test_knee_point_is_the_member_farthest_from_the_line_between_the_ends():
    front = pd.DataFrame(
        {
            "number": [10, 11, 12, 13],
            "accuracy": [0.50, 0.90, 0.93, 0.95],
            "stored_bytes": [1000.0, 2000.0, 6000.0, 10000.0],
        }
    )
    assert knee_point(front, ("accuracy", "stored_bytes")) == 11


@pytest.mark.parametrize(
    ("accuracies", "expected"),
    [
        ((0.35, 0.97), 21),  # the cheaper member loses 62 points: the accurate one, whatever the row order
        ((0.965, 0.97), 20),  # the cheaper member gives up half a point: it is the knee
    ],
)
def test_a_two_point_front_has_a_stated_knee_not_the_first_row(accuracies, expected):
    front = pd.DataFrame({"number": [20, 21], "accuracy": list(accuracies), "stored_bytes": [1000.0, 4000.0]})
    assert knee_point(front, ("accuracy", "stored_bytes")) == expected
    reversed_rows = front.iloc[::-1].reset_index(drop=True)
    assert knee_point(reversed_rows, ("accuracy", "stored_bytes")) == expected


def test_a_one_point_front_and_a_collinear_front_have_knees():
    single = pd.DataFrame({"number": [5], "accuracy": [0.9], "stored_bytes": [100.0]})
    assert knee_point(single, ("accuracy", "stored_bytes")) == 5
    line = pd.DataFrame({"number": [1, 2, 3], "accuracy": [0.50, 0.70, 0.90], "stored_bytes": [1000.0, 2000.0, 3000.0]})
    assert knee_point(line, ("accuracy", "stored_bytes")) == 3  # no member gives up less than a point


def test_the_knee_is_taken_among_members_the_export_would_not_warn_about():
    """The quickstart's case: a front reaching far down has its geometric knee 11 points below the baseline."""
    front = pd.DataFrame(
        {
            "number": [1, 2, 3, 4, 5],
            "accuracy": [0.30, 0.86, 0.93, 0.955, 0.965],
            "latency_ms": [1.0, 1.7, 2.0, 2.1, 2.3],
        }
    )
    objectives = ("accuracy", "latency_ms")
    assert knee_point(front, objectives) == 2  # geometry alone: 10.9 points below a 0.97 baseline
    assert knee_point(front, objectives, baseline_accuracy=0.97) == 4  # the knee of members within 5 points
    # No member within 5 points (all of this front is far below): the whole front's knee, which the export warns of.
    far = front.assign(accuracy=front["accuracy"] - 0.2)
    assert knee_point(far, objectives, baseline_accuracy=0.97) == knee_point(far, objectives)
