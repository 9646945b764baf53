"""A user's own trained Flax models through the Python API and the CLI: discovered, searched for a few
trials, exported and verified in the LiteRT interpreter, with the user's weights as the baseline."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from flax import serialization

from nas import api
from nas.cli import main
from nas.training.data import Dataset
from tests import usermodels

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_resnet(digits: Dataset):
    model, variables = usermodels.linen_resnet()
    return model, usermodels.train_linen(model, variables, digits.x_train, digits.y_train)


def _own_val_accuracy(logits: np.ndarray, digits: Dataset) -> float:
    return float((np.asarray(logits).argmax(-1) == digits.y_val).mean())


def _check_exported(records: list[dict]) -> None:
    assert records and all(r["passed"] for r in records), records
    for record in records:
        assert record["model"].endswith(".tflite")
        assert record["jax_test_accuracy"] > 0.1


def test_linen_resnet_is_searched_exported_and_verified_through_the_api(trained_resnet, digits, tmp_path):
    model, variables = trained_resnet
    result = api.search(
        model, variables, study="linen", trials=3, finetune_steps=40, results_dir=tmp_path, show_progress=False
    )
    trials = result.study.trials
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    # The baseline is the user's own weights, evaluated, not a retrained network.
    own = _own_val_accuracy(model.apply(variables, digits.x_val), digits)
    assert result.study.user_attrs["baseline"]["val_accuracy"] == pytest.approx(own, abs=1e-9)
    assert result.discovered is not None and len(result.discovered.graph.compressible) == 5
    assert {"stem.keep", "block_conv_a.keep", "down.keep", "head.precision"} <= set(trials[0].params)
    assert not result.front.empty
    _check_exported(result.export("knee"))


def test_nnx_mlp_on_standardized_arrays_is_searched_exported_and_verified_through_the_api(digits, tmp_path):
    # The user's own preprocessing (standardized inputs, negative values included), passed as arrays.
    mean, std = digits.x_train.mean(), digits.x_train.std()
    data = {
        "x_train": (np.concatenate([digits.x_train, digits.x_val]) - mean) / std,
        "y_train": np.concatenate([digits.y_train, digits.y_val]),
        "x_test": (digits.x_test - mean) / std,
        "y_test": digits.y_test,
    }
    dataset = api.dataset_of(data)
    model = usermodels.train_nnx(usermodels.nnx_mlp(), dataset.x_train, dataset.y_train)
    result = api.search(
        model, data=data, study="mlp", trials=3, finetune_steps=40, results_dir=tmp_path, show_progress=False
    )
    own = float((np.asarray(model(dataset.x_val)).argmax(-1) == dataset.y_val).mean())
    assert result.study.user_attrs["baseline"]["val_accuracy"] == pytest.approx(own, abs=1e-9)
    assert result.config.dataset.endswith(".npz")  # saved, so later commands read the same arrays
    _check_exported(result.export(result.front["number"].iloc[-1].item()))


def test_cli_searches_a_factory_with_saved_weights_resumes_and_exports(trained_resnet, tmp_path, capsys):
    _, variables = trained_resnet
    weights = tmp_path / "resnet.msgpack"
    weights.write_bytes(serialization.to_bytes(variables))
    results = str(tmp_path / "results")
    command = ["search", "--model", "tests.usermodels:linen_resnet", "--weights", str(weights)]
    command += ["--study", "cli", "--steps", "20", "--no-progress", "--results-dir", results]
    assert main([*command, "--trials", "2"]) == 0
    assert "discovered tests.usermodels:linen_resnet: 5 compressible layers" in capsys.readouterr().err
    assert main([*command, "--trials", "3"]) == 0
    assert "1 trials run, 2 resumed" in capsys.readouterr().out
    assert len(list((tmp_path / "results" / "models").iterdir())) == 1  # one content-addressed copy
    assert main(["export", "--study", "cli", "--knee", "--results-dir", results]) == 0
    verification = json.loads((tmp_path / "results" / "cli" / "verification.json").read_text())
    assert all(record["passed"] for record in verification.values())

    # Other weights are another model: the study refuses them instead of mixing two models' trials.
    changed = {**variables, "params": {**variables["params"], "head": {**variables["params"]["head"]}}}
    changed["params"]["head"]["bias"] = np.asarray(changed["params"]["head"]["bias"]) + 1.0
    weights.write_bytes(serialization.to_bytes(changed))
    assert main([*command, "--trials", "3"]) == 2
    assert "exists with different settings (model, weights)" in capsys.readouterr().err


@pytest.mark.parametrize("network", [usermodels.LinenWithLayerNorm, usermodels.LinenWithAttention])
def test_a_model_with_float_regions_is_searched_exported_and_verified(network, digits, tmp_path):
    model = network()
    initial = model.init(jax.random.key(0), digits.x_train[:1])
    variables = usermodels.train_linen(model, initial, digits.x_train, digits.y_train, steps=200)
    result = api.search(
        model, variables, study="float", trials=3, finetune_steps=40, results_dir=tmp_path, show_progress=False
    )
    assert result.discovered is not None and result.discovered.float_regions
    metrics = result.study.trials[0].user_attrs["metrics"]
    assert metrics["provenance"]["latency_ms"].startswith("analytic")  # a float region's cost is a stand-in
    _check_exported(result.export("pareto"))


def test_cli_refuses_a_model_it_cannot_search_in_one_line(tmp_path, capsys):
    code = main(
        [
            *("search", "--model", "tests.usermodels:linen_softmax_head", "--study", "soft", "--trials", "1"),
            *("--results-dir", str(tmp_path), "--no-progress"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "must end in a dense layer" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "soft").exists()
