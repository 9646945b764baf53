"""Shared fixtures: the digits data, small graphs and a quickly trained baseline (session scoped)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import jax.numpy as jnp
import pytest

from latency_models.correction import MEASURED_VARIABLE
from nas.activity import REGISTRY_VARIABLE
from nas.compile_cache import CACHE_VARIABLE, enable_compilation_cache
from nas.compress.numerics import strict_numerics
from nas.config import HOST_LATENCY_VARIABLE, FinetuneConfig, TrainConfig
from nas.training.data import Dataset, load_dataset
from nas.training.finetune import make_trainer
from nas.training.train import Baseline, train_baseline
from search_spaces.graph import ModelGraph, analyze
from search_spaces.spec import load_model_spec

QUICK_TRAIN = TrainConfig(epochs=10)

# This test process's own registry of running searches (inherited by the processes its tests start): a search
# that another session, a benchmark or the other test worker (pytest -n 2) runs on this machine must not make
# the export tests refuse to time the host. An xdist worker inherits its controller's variable: it replaces it.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER or REGISTRY_VARIABLE not in os.environ:
    os.environ[REGISTRY_VARIABLE] = tempfile.mkdtemp(prefix=f"nas-test-searches-{_WORKER or 'main'}-")

# One JAX compilation cache for this test run, shared by both test processes and every command they start
# (a fresh one: the run never depends on what an earlier run compiled), removed when the run ends.
if CACHE_VARIABLE not in os.environ:
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="nas-test-compilation-cache-")
    atexit.register(shutil.rmtree, os.environ[CACHE_VARIABLE], ignore_errors=True)
enable_compilation_cache()

# A host study's trials take the tables' figures unless a test asks for timing (``host_latency="measured"``):
# fixed figures keep a rerun's trials identical, and timing every trial of every test search would serialize
# both test processes on the timing lock.
os.environ.setdefault(HOST_LATENCY_VARIABLE, "predicted")

# The models a test search times are kept for the host's learned correction: in this run's own directory, never
# in the user's, and never read from it (a correction learned there would change every test's predictions).
if MEASURED_VARIABLE not in os.environ:
    os.environ[MEASURED_VARIABLE] = tempfile.mkdtemp(prefix="nas-test-measured-models-")
    atexit.register(shutil.rmtree, os.environ[MEASURED_VARIABLE], ignore_errors=True)


@pytest.fixture
def strict_jax_numerics():
    """Strict dtype promotion and rank promotion errors for a test body that calls our array code directly
    (the model's forward pass is strict by itself, ``nas/compress/numerics.py``)."""
    with strict_numerics():
        yield


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def cnn_graph(digits: Dataset) -> ModelGraph:
    return analyze(load_model_spec("cnn"), digits.input_shape, digits.num_classes)


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="session")
def cnn_baseline(cnn_graph: ModelGraph, digits: Dataset, results_dir: Path) -> Baseline:
    return train_baseline(cnn_graph, digits, QUICK_TRAIN, results_dir=results_dir)


@pytest.fixture(scope="session")
def cnn_trainer(cnn_graph: ModelGraph):
    return make_trainer(cnn_graph, FinetuneConfig(steps=40))


@pytest.fixture(scope="session")
def digits_on_device(digits: Dataset):
    return jnp.asarray(digits.x_train), jnp.asarray(digits.y_train)
