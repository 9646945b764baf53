"""Channel pruning snaps to a device's channel granule: on an Ethos-U every group keeps whole blocks of 8
channels (or all of them), on the host the grid is untouched, and snapped candidates round-trip through Optuna."""

import optuna
import pytest

from latency_models.device import load_device, profile_from_dict
from latency_models.errors import CostModelError
from nas.config import SearchConfig
from nas.search.context import resolve_problem
from search_spaces.errors import SpecError
from search_spaces.graph import analyze
from search_spaces.space import SearchSpace, candidate_params, suggest_candidate
from search_spaces.spec import load_model_spec
from search_spaces.techniques import technique_of_param
from search_spaces.techniques.channel_keep import kept_count, snapped_ratios

optuna.logging.set_verbosity(optuna.logging.WARNING)
KEEP = technique_of_param("x.keep")
GRID = SearchSpace().channel_keep.values()


def _kept_counts(graph, space):
    """Per prunable group: its size and the channel counts the space lets it keep."""
    return {
        leader.name: (
            leader.out_channels,
            [kept_count(leader.out_channels, r) for r in space.choices_for(leader).keep_ratios()],
        )
        for leader in KEEP.knob_layers(graph)
    }


@pytest.mark.parametrize("device", ["ethos_u55_128", "ethos_u65_256"])
def test_an_ethos_u_search_keeps_whole_blocks_of_8_channels_and_the_host_keeps_the_grid(device):
    assert load_device(device).channel_granule == 8 and load_device("host").channel_granule == 1
    npu = resolve_problem(SearchConfig(model="cnn", device=device))
    assert _kept_counts(npu.graph, npu.space) == {"conv1": (32, [8, 16, 24, 32]), "conv2": (64, list(range(16, 65, 8)))}
    host = resolve_problem(SearchConfig(model="cnn", device="host"))
    assert [KEEP.values(host.space.choices_for(leader)) for leader in KEEP.knob_layers(host.graph)] == [GRID, GRID]
    unsnapped = resolve_problem(SearchConfig(model="cnn", device=device, snap_channels=False)).space
    assert [KEEP.values(unsnapped.choices_for(leader)) for leader in KEEP.knob_layers(npu.graph)] == [GRID, GRID]


def test_a_group_narrower_than_the_granule_keeps_all_its_channels_and_an_odd_one_may_keep_all():
    graph = analyze(load_model_spec("mobilenet_v1"), (8, 8, 1), 10)  # groups of 8 to 256 channels
    counts = _kept_counts(graph, SearchSpace().snapped_to(8))
    assert counts["stem"] == (8, [8])  # one block: a single value, so the knob is fixed, not suggested
    for size, kept in counts.values():
        assert kept == sorted(set(kept)) and all(c % 8 == 0 or c == size for c in kept) and kept[-1] == size
    assert snapped_ratios(GRID, 4, 8) == (1.0,)
    assert [kept_count(12, r) for r in snapped_ratios(GRID, 12, 8)] == [8, 12]  # capped at the group
    assert [kept_count(20, r) for r in snapped_ratios(GRID, 20, 8)] == [8, 16, 20]
    # Rounded up: 5 of 32 (short of a block) keeps the block, as the NPU computes it anyway.
    assert snapped_ratios((0.15,), 32, 8) == (0.25,)
    assert SearchSpace().snapped_to(1) == SearchSpace()
    with pytest.raises(SpecError, match="channel_granule must be at least 1"):
        SearchSpace().snapped_to(0)


def test_snapped_candidates_round_trip_through_a_stored_study_with_one_distribution_per_group(tmp_path):
    graph = analyze(load_model_spec("resnet8"), (8, 8, 1), 10)  # groups of 16, 32 and 64 channels
    space = SearchSpace().with_model_rules(load_model_spec("resnet8").rules).without_sparsity().snapped_to(8)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}",
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=3),
    )
    for _ in range(6):
        trial = study.ask()
        candidate = suggest_candidate(trial, graph, space)
        study.tell(trial, [0.5, 1.0])
        stored = study.trials[-1].params
        assert suggest_candidate(optuna.trial.FixedTrial(stored), graph, space) == candidate
        assert candidate_params(candidate, graph, space) == stored
    for leader in KEEP.knob_layers(graph):
        name = KEEP.param_name(leader)
        (distribution,) = {repr(t.distributions[name]) for t in study.trials if name in t.distributions}
        assert distribution == repr(
            optuna.distributions.CategoricalDistribution(list(space.choices_for(leader).keep_ratios()))
        )


@pytest.mark.parametrize("bad", [0, -8, 8.5, "8", True, 1024])
def test_a_bad_channel_granule_in_a_profile_is_refused_in_one_line(bad):
    raw = load_device("ethos_u55_128").to_dict()
    assert profile_from_dict(raw) == load_device("ethos_u55_128")  # the granule survives the JSON form
    with pytest.raises(CostModelError, match="channel_granule must be a whole number of channels from 1") as error:
        profile_from_dict({**raw, "channel_granule": bad}, "ethos_u55_128.json")
    assert "\n" not in str(error.value) and repr(bad) in str(error.value)
