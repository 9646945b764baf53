"""The warnings a user gets before trusting a model or a split: a collapsed model, a split that cannot rank."""

from __future__ import annotations

from nas.analysis.quality import collapse_warning
from nas.search.ranking import ranking_notices


def test_a_model_near_chance_or_far_below_the_baseline_is_warned_about():
    assert "collapsed" in collapse_warning(0.101, 0.983, 10)
    assert "36.3 points below" in collapse_warning(0.62, 0.983, 10)
    assert collapse_warning(0.95, 0.983, 10) is None  # 3.3 points: within the 5-point bound
    assert "near chance" in collapse_warning(0.55, 0.60, 2)  # two classes: 0.55 is a coin toss, however close


def test_a_split_that_cannot_rank_is_named_with_its_step():
    assert ranking_notices(0.97, 360) == []
    (small,) = ranking_notices(0.9, 28)
    assert "28 examples" in small and "3.6 points" in small
    perfect = ranking_notices(1.0, 91)
    assert len(perfect) == 2 and "1.000" in perfect[1] and "1.1 points" in perfect[0]
