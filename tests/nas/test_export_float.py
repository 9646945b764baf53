"""Float export through the LiteRT converter, checked in the real LiteRT interpreter."""

import subprocess
import sys

import numpy as np
import pytest

from latency_models.errors import ModelLoadError
from latency_models.runtimes.litert.interpreter import load_interpreter, predict_tflite
from nas.compress.compression import build_compression
from nas.compress.shrink import shrink
from nas.runtime.export import float_tflite
from nas.training.finetune import predict
from search_spaces.space import Candidate, LayerPolicy

pytestmark = pytest.mark.slow  # real exports through the LiteRT toolchain


@pytest.fixture(scope="module")
def pruned(cnn_graph, cnn_baseline):
    policy = LayerPolicy(sparsity=0.5, channel_keep=0.5, weight_bits=32, activation_bits=32)
    candidate = Candidate(policies=tuple((layer.name, policy) for layer in cnn_graph.compressible))
    compression = build_compression(cnn_graph, cnn_baseline.params, candidate)
    return compression, shrink(cnn_graph, cnn_baseline.params, compression)


@pytest.mark.parametrize("delegate", ["xnnpack", "builtin"])
def test_float_export_of_a_pruned_candidate_agrees_with_jax(pruned, cnn_trainer, cnn_baseline, digits, delegate):
    compression, small = pruned
    model = float_tflite(small.graph, small.params)
    interpreter = load_interpreter(model.content, delegate=delegate)
    tflite = predict_tflite(interpreter, digits.x_test)
    jax_predictions = predict(cnn_trainer, cnn_baseline.params, compression, digits.x_test)
    assert (tflite == jax_predictions).mean() == 1.0
    # Channels are physically gone: conv2 reads 16 channels and writes 32.
    shapes = {tuple(t["shape"]) for t in interpreter.get_tensor_details()}
    assert (32, 3, 3, 16) in shapes and (64, 3, 3, 32) not in shapes


def test_unstructured_zeros_are_stored_but_compress(cnn_graph, cnn_baseline, pruned):
    _, small = pruned
    dense_policy = LayerPolicy(sparsity=0.0, channel_keep=0.5, weight_bits=32, activation_bits=32)
    dense = Candidate(policies=tuple((layer.name, dense_policy) for layer in cnn_graph.compressible))
    dense_small = shrink(cnn_graph, cnn_baseline.params, build_compression(cnn_graph, cnn_baseline.params, dense))
    sparse_model, dense_model = (
        float_tflite(small.graph, small.params),
        float_tflite(dense_small.graph, dense_small.params),
    )
    assert abs(sparse_model.file_bytes - dense_model.file_bytes) < 64  # zeros are stored densely
    assert sparse_model.gzip_bytes < 0.8 * dense_model.gzip_bytes


def test_an_exported_model_runs_in_a_fresh_process(pruned, tmp_path, digits):
    _, small = pruned
    path = tmp_path / "model.tflite"
    path.write_bytes(float_tflite(small.graph, small.params).content)
    np.save(tmp_path / "x.npy", digits.x_test[:5])
    script = (
        "import sys, numpy as np; "
        "from latency_models.runtimes.litert.interpreter import load_interpreter, predict_tflite; "
        f"i = load_interpreter(open({str(path)!r}, 'rb').read()); "
        f"print(predict_tflite(i, np.load({str(tmp_path / 'x.npy')!r})).tolist())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert len(eval(out.strip().splitlines()[-1])) == 5


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_or_truncated_models_give_a_clear_error(pruned, damage):
    _, small = pruned
    content = float_tflite(small.graph, small.params).content
    broken = content[: len(content) // 3] if damage == "truncate" else b"TFL3" + bytes(range(256)) * 4
    with pytest.raises(ModelLoadError, match="not a loadable LiteRT model"):
        load_interpreter(broken)
