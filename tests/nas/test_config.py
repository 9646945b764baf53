import pytest

from nas.config import DEFAULT_TRAIN_LEARNING_RATE, FinetuneConfig, SearchConfig, TrainConfig
from nas.errors import ConfigError
from nas.search.context import resolve_problem
from search_spaces.spec import load_model_spec


def test_config_round_trips_through_json_and_reports_differences():
    config = SearchConfig(
        model="resnet8",
        objectives=("accuracy", "compressed_bytes"),
        budgets={"compressed_bytes": 12_500.0},
        finetune=FinetuneConfig(steps=7),
        space={"weight_bits": [8, 32]},
    )
    again = SearchConfig.from_json(config.to_json())
    assert again == config and again.size_term == "compressed_bytes"
    assert SearchConfig().differences(config) == ["model", "space", "objectives", "budgets", "finetune.steps"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objectives": ("accuracy", "latency_us")}, "unknown objective 'latency_us'"),
        ({"objectives": ("stored_bytes",)}, "must start with accuracy"),
        ({"objectives": ("stored_bytes", "accuracy")}, "must start with accuracy"),
        ({"objectives": ("accuracy", "stored_bytes", "stored_bytes")}, "name a term twice"),
        ({"sampler": "cma"}, "unknown sampler"),
        ({"budgets": {"stored_bytes": -1.0}}, "--max-size-kb must be a positive cost budget"),
        ({"budgets": {"latency_us": 1.0}}, "unknown objective 'latency_us'"),
    ],
)
def test_invalid_configs_say_what_to_fix(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SearchConfig(**kwargs)


def test_a_study_created_with_the_old_size_budget_field_keeps_its_budget():
    legacy = (
        SearchConfig(objectives=("accuracy", "compressed_bytes"))
        .to_json()
        .replace('"budgets": {}', '"max_size_kb": 8.0')
    )
    assert SearchConfig.from_json(legacy).budgets == {"compressed_bytes": 8000.0}


def test_a_study_created_before_fine_tuning_targets_resumes_toward_the_labels_it_trained_on():
    assert SearchConfig().finetune.targets == "teacher"
    legacy = SearchConfig().to_json().replace(', "targets": "teacher"', "")
    assert "targets" not in legacy
    assert SearchConfig.from_json(legacy).finetune.targets == "labels"
    # Resuming it under the default refuses and names the flag; --finetune-targets labels resumes it.
    assert SearchConfig.from_json(legacy).differences(SearchConfig()) == ["finetune.targets"]
    with pytest.raises(ConfigError, match="unknown fine-tuning targets 'soft'; use teacher or labels"):
        FinetuneConfig(targets="soft")


def test_an_ethos_u_study_created_before_channel_snapping_resumes_unsnapped_and_any_other_either_way():
    for device, snapped in (("ethos_u55_128", False), ("ethos_u65_256", False), ("host", True), ("stm32h7", True)):
        legacy = SearchConfig(device=device).to_json().replace(', "snap_channels": true', "")
        assert "snap_channels" not in legacy
        assert SearchConfig.from_json(legacy).snap_channels is snapped
    # The U55's resume under the default names the setting (--no-snap-channels resumes it).
    legacy = SearchConfig(device="ethos_u55_128").to_json().replace(', "snap_channels": true', "")
    assert SearchConfig.from_json(legacy).differences(SearchConfig(device="ethos_u55_128")) == ["snap_channels"]


def test_the_baseline_rate_is_the_given_one_else_the_spec_s_else_the_default():
    assert TrainConfig(learning_rate=0.5).rate(0.03) == 0.5
    assert TrainConfig().rate(0.03) == 0.03
    assert TrainConfig().rate(None) == DEFAULT_TRAIN_LEARNING_RATE
    # The resolved form is what a study stores: a family without a declared rate stores what it stored before
    # specs could declare one, so its studies still resume.
    assert TrainConfig().resolved(None) == TrainConfig(learning_rate=DEFAULT_TRAIN_LEARNING_RATE)
    with pytest.raises(ValueError, match="learning_rate > 0"):
        TrainConfig(learning_rate=0.0)


def test_a_study_stores_the_rate_its_family_declares(tmp_path):
    declared = load_model_spec("mobilenet_v1").train_learning_rate
    assert declared is not None and declared != DEFAULT_TRAIN_LEARNING_RATE
    assert resolve_problem(SearchConfig(model="mobilenet_v1")).config.train.learning_rate == declared
    assert resolve_problem(SearchConfig(model="cnn")).config.train.learning_rate == DEFAULT_TRAIN_LEARNING_RATE
    given = SearchConfig(model="mobilenet_v1", train=TrainConfig(learning_rate=0.01))
    assert resolve_problem(given).config.train.learning_rate == 0.01
