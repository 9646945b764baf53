"""The front against a baseline point at no more cost: beaten, matched, not beaten, not runnable."""

from __future__ import annotations

import pandas as pd

from nas.analysis.baselines_report import judge

OBJECTIVES = ("accuracy", "latency_ms")
FRONT = pd.DataFrame({"number": [1, 2, 3], "accuracy": [0.90, 0.95, 0.97], "latency_ms": [1.0, 2.0, 4.0]})


def _point(accuracy: float, latency: float) -> dict:
    return {"name": "b", "metrics": {"val_accuracy": accuracy, "latency_ms": latency}}


def test_the_most_accurate_front_point_at_no_more_cost_decides():
    beaten = judge(FRONT, _point(0.93, 2.5), OBJECTIVES)
    assert beaten.verdict == "beaten" and "trial 2" in beaten.detail  # trial 3 costs more than 2.5 ms
    assert judge(FRONT, _point(0.953, 2.0), OBJECTIVES).verdict == "matched"  # within half a point
    assert judge(FRONT, _point(0.99, 4.0), OBJECTIVES).verdict == "not beaten"
    cheap = judge(FRONT, _point(0.5, 0.5), OBJECTIVES)
    assert cheap.verdict == "not beaten" and "no front point costs as little" in cheap.detail


def test_a_baseline_the_device_cannot_run_is_named_so():
    verdict = judge(
        FRONT, {"name": "fp32", "metrics": {}, "unrunnable": "stm32h7 does not run conv1 w32a32"}, OBJECTIVES
    )
    assert verdict.verdict == "not runnable" and "stm32h7" in verdict.detail
