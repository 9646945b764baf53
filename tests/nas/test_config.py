import pytest

from nas.config import FinetuneConfig, SearchConfig
from nas.errors import ConfigError


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
    assert SearchConfig().differences(config) == ["model", "space", "objectives", "budgets", "finetune"]


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
