import numpy as np
import optuna

from nas.compress.compression import build_compression
from nas.config import FinetuneConfig
from nas.training.evaluate import evaluate
from nas.training.finetune import finetune, make_trainer
from search_spaces.space import Candidate, LayerPolicy, SearchSpace, suggest_candidate


def _pruned(graph, sparsity=0.5, keep=0.5, w=8, a=8):
    policy = LayerPolicy(sparsity=sparsity, channel_keep=keep, weight_bits=w, activation_bits=a)
    return Candidate(policies=tuple((layer.name, policy) for layer in graph.compressible))


def test_one_compilation_serves_every_trial(cnn_graph, cnn_baseline, digits, digits_on_device):
    x, y = digits_on_device
    cnn_trainer = make_trainer(cnn_graph, FinetuneConfig(steps=3))  # its own: other tests share the fixture
    space = SearchSpace().with_model_rules(cnn_graph.spec.rules)
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for number in range(6):
        candidate = suggest_candidate(study.ask(), cnn_graph, space)
        seen |= {(p.weight_bits, p.activation_bits) for _, p in candidate.policies}
        compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
        params, compression = finetune(cnn_trainer, cnn_baseline.params, compression, x, y, seed=number, steps=3)
        evaluate(cnn_trainer, params, compression, digits.x_val, digits.y_val)
        assert dict(cnn_trainer.trace_counts) == {"start": 1, "calibrate": 1, "train_step": 1, "predict": 1}
    assert len(seen) > 3  # the trials really differed in precision
    assert cnn_trainer.train_step._cache_size() == 1
    assert cnn_trainer.logits_batch._cache_size() == 1


def test_finetuning_keeps_pruned_weights_at_zero_and_recovers_accuracy(
    cnn_graph, cnn_baseline, cnn_trainer, digits, digits_on_device
):
    x, y = digits_on_device
    candidate = _pruned(cnn_graph)
    compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
    untrained, calibrated = finetune(cnn_trainer, cnn_baseline.params, compression, x, y, seed=0, steps=0)
    before = evaluate(cnn_trainer, untrained, calibrated, digits.x_val, digits.y_val).accuracy
    params, tuned = finetune(cnn_trainer, cnn_baseline.params, compression, x, y, seed=0)
    after = evaluate(cnn_trainer, params, tuned, digits.x_val, digits.y_val).accuracy
    for name, layer_params in params.items():
        mask = np.asarray(compression["kernel_mask"][name], bool)
        assert not np.asarray(layer_params["kernel"])[~mask].any()
        assert np.asarray(layer_params["kernel"])[mask].all()  # surviving weights are still live
    assert not np.asarray(params["conv1"]["bias"])[~np.asarray(compression["channel_mask"]["conv1"], bool)].any()
    assert after > before + 0.1, (before, after)
    # Activation ranges were recalibrated after training, and contain zero.
    ranges = {k: np.asarray(v) for k, v in tuned["ranges"].items()}
    assert all(r[0] <= r[1] for r in ranges.values())
    assert any(not np.allclose(ranges[k], np.asarray(calibrated["ranges"][k])) for k in ranges)


def test_finetuning_is_deterministic_for_a_seed(cnn_graph, cnn_baseline, cnn_trainer, digits_on_device):
    x, y = digits_on_device
    compression = build_compression(cnn_graph, cnn_baseline.params, _pruned(cnn_graph, w=4))
    first, _ = finetune(cnn_trainer, cnn_baseline.params, compression, x, y, seed=7, steps=5)
    second, _ = finetune(cnn_trainer, cnn_baseline.params, compression, x, y, seed=7, steps=5)
    np.testing.assert_array_equal(np.asarray(first["conv2"]["kernel"]), np.asarray(second["conv2"]["kernel"]))
