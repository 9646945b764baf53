"""A damaged cache is rebuilt, never trusted."""

from __future__ import annotations

from nas.config import TrainConfig
from nas.training.train import train_baseline


def test_a_truncated_baseline_cache_is_rebuilt(cnn_graph, digits, tmp_path):
    first = train_baseline(cnn_graph, digits, TrainConfig(epochs=1), results_dir=tmp_path)
    params = first.cache_dir / "params.npz"
    params.write_bytes(params.read_bytes()[:100])
    again = train_baseline(cnn_graph, digits, TrainConfig(epochs=1), results_dir=tmp_path)
    assert not again.from_cache and again.val_accuracy == first.val_accuracy
    assert train_baseline(cnn_graph, digits, TrainConfig(epochs=1), results_dir=tmp_path).from_cache
