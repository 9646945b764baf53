import pytest

from nas.config import SearchConfig
from nas.errors import ConfigError
from nas.finetune import FinetuneConfig


def test_config_round_trips_through_json_and_reports_differences():
    config = SearchConfig(
        model="resnet8",
        objectives=("accuracy", "compressed_bytes"),
        max_size_kb=12.5,
        finetune=FinetuneConfig(steps=7),
        space={"weight_bits": [8, 32]},
    )
    again = SearchConfig.from_json(config.to_json())
    assert again == config and again.size_term == "compressed_bytes"
    assert SearchConfig().differences(config) == ["model", "space", "objectives", "max_size_kb", "finetune"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objectives": ("accuracy", "latency_us")}, "unknown objective 'latency_us'"),
        ({"objectives": ("stored_bytes",)}, "must include accuracy"),
        ({"sampler": "cma"}, "unknown sampler"),
        ({"max_size_kb": -1.0}, "must be positive"),
    ],
)
def test_invalid_configs_say_what_to_fix(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SearchConfig(**kwargs)
