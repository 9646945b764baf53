"""Hostile and malformed input, as a careful user would try it: each case sets up its files, runs one ``nas``
command, and is judged by what a user must get: exit code 2, one line naming the problem, nothing written.

``tests/integration/test_hostile_inputs.py`` runs every case; ``scripts/hostile_inputs_table.py`` writes the
README table from the same runs, so the table says what the tool does now.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QUICK = ["--trials", "1", "--epochs", "1", "--steps", "1", "--no-progress"]


@dataclass(frozen=True)
class Case:
    """One hostile input: what it is, how to set it up in a directory, and the command that meets it."""

    name: str
    argv: Callable[[Path], list[str]]


@dataclass(frozen=True)
class Outcome:
    """What the command did."""

    code: int
    stderr: str
    wrote: list[str]

    @property
    def ok(self) -> bool:
        """Exit 2, one line of error, nothing written."""
        return self.code == 2 and len(self.stderr.strip().splitlines()) == 1 and not self.wrote

    @property
    def message(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def run(case: Case, directory: Path) -> Outcome:
    """Runs ``case`` in ``directory`` (its results go to ``directory/results``)."""
    from nas.cli import main

    argv = case.argv(directory)
    before = _snapshot(directory)
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            code = main([*argv, "--results-dir", str(directory / "results")] if _takes_results(argv) else argv)
        except SystemExit as exit_:  # argparse's own errors
            code = int(exit_.code or 0)
        except Exception as err:  # a traceback a user would see
            code, stderr = 1, io.StringIO(f"traceback: {type(err).__name__}: {err}\n")
    after = _snapshot(directory)
    wrote = sorted(p for p in after if before.get(p) != after[p])
    return Outcome(code=code, stderr=stderr.getvalue(), wrote=wrote)


def _takes_results(argv: list[str]) -> bool:
    return argv[0] in ("search", "pareto", "plot", "export", "train", "report") and "--results-dir" not in argv


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file()
    }


# -- set-ups ---------------------------------------------------------------------------------------------------


def _npz(directory: Path, name: str = "data.npz", **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((60, 8, 8)).astype(np.float32),
        "y_train": np.arange(60) % 3,
        "x_test": rng.random((12, 8, 8)).astype(np.float32),
        "y_test": np.arange(12) % 3,
    }
    arrays.update(overrides)
    path = directory / name
    np.savez(path, **arrays)
    return path


def _file(directory: Path, name: str, content: bytes | str) -> Path:
    path = directory / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _spec(directory: Path, nodes) -> Path:
    return _file(directory, "spec.json", json.dumps({"name": "bad", "nodes": nodes}))


def _space(directory: Path, raw) -> Path:
    return _file(directory, "space.json", json.dumps(raw))


def _idx_dir(directory: Path, cut_header: bool = False, truncated_gz: bool = False) -> Path:
    folder = directory / "idx"
    folder.mkdir(exist_ok=True)
    images, labels = np.zeros((20, 8, 8), np.uint8), np.arange(20, dtype=np.uint8) % 2
    for stem, array in (
        ("train-images-idx3-ubyte", images),
        ("train-labels-idx1-ubyte", labels),
        ("t10k-images-idx3-ubyte", images),
        ("t10k-labels-idx1-ubyte", labels),
    ):
        payload = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
        payload += array.tobytes()
        if cut_header and stem.startswith("train-images"):
            payload = payload[:6]
        if truncated_gz and stem.startswith("train-images"):
            (folder / f"{stem}.gz").write_bytes(gzip.compress(payload)[:-20])
        else:
            (folder / stem).write_bytes(payload)
    return folder


def _study_dir(directory: Path, name: str, content: bytes | None) -> None:
    root = directory / "results" / name
    root.mkdir(parents=True, exist_ok=True)
    if content is not None:
        (root / "study.db").write_bytes(content)


def _search(*extra: str) -> list[str]:
    return ["search", "--study", "h", *QUICK, *extra]


CASES: list[Case] = [
    Case("unknown device", lambda d: _search("--device", "toaster")),
    Case("unknown model", lambda d: _search("--model", "nope")),
    Case("unknown dataset", lambda d: _search("--dataset", "nope")),
    Case("unknown sampler", lambda d: _search("--sampler", "nope")),
    Case("garbage bytes named .npz", lambda d: _search("--dataset", str(_file(d, "x.npz", b"\x00garbage")))),
    Case("empty file named .npz", lambda d: _search("--dataset", str(_file(d, "e.npz", b"")))),
    Case(".npy named .npz", lambda d: _search("--dataset", str(_npy_as_npz(d)))),
    Case("truncated .npz", lambda d: _search("--dataset", str(_truncated(_npz(d))))),
    Case("IDX file cut inside its header", lambda d: _search("--dataset", str(_idx_dir(d, cut_header=True)))),
    Case("truncated .gz IDX file", lambda d: _search("--dataset", str(_idx_dir(d, truncated_gz=True)))),
    Case("truncated CIFAR-10 batch", lambda d: _search("--dataset", str(_cifar_dir(d)))),
    Case("labels out of range (negative)", lambda d: _search("--dataset", str(_npz(d, y_train=np.arange(60) % 3 - 1)))),
    Case("non-integer labels", lambda d: _search("--dataset", str(_npz(d, y_train=np.arange(60) % 3 + 0.5)))),
    Case("labels that overflow int32", lambda d: _search("--dataset", str(_npz(d, y_train=np.arange(60) * 2**40)))),
    Case("NaN features", lambda d: _search("--dataset", str(_npz(d, x_test=np.full((12, 8, 8), np.nan))))),
    Case("infinite features", lambda d: _search("--dataset", str(_npz(d, x_test=np.full((12, 8, 8), np.inf))))),
    Case(
        "empty dataset",
        lambda d: _search("--dataset", str(_npz(d, x_train=np.zeros((0, 8, 8)), y_train=np.zeros(0, int)))),
    ),
    Case(
        "a single class",
        lambda d: _search("--dataset", str(_npz(d, y_train=np.zeros(60, int), y_test=np.zeros(12, int)))),
    ),
    Case(
        "train and test of different shapes", lambda d: _search("--dataset", str(_npz(d, x_test=np.zeros((12, 9, 9)))))
    ),
    Case("too few examples for a validation split", lambda d: _search("--dataset", str(_tiny(d)))),
    Case("spec: a number where the nodes list belongs", lambda d: _search("--model", str(_spec(d, 3)))),
    Case(
        "spec: features null",
        lambda d: _search(
            "--model", str(_spec(d, [{"name": "a", "op": "conv", "features": None, "kernel": 3}, _head()]))
        ),
    ),
    Case(
        "spec: kernel as a string",
        lambda d: _search(
            "--model", str(_spec(d, [{"name": "a", "op": "conv", "features": 4, "kernel": "3"}, _head()]))
        ),
    ),
    Case("spec: NaN width", lambda d: _search("--width", "nan")),
    Case("spec: not JSON", lambda d: _search("--model", str(_file(d, "s.json", "{nodes: [")))),
    Case("space: sparsity as a string", lambda d: _search("--space", str(_space(d, {"sparsity": "lots"})))),
    Case("space: non-integer bit width", lambda d: _search("--space", str(_space(d, {"weight_bits": [4.5, 8]})))),
    Case("space: a bit width the runtime lacks", lambda d: _search("--space", str(_space(d, {"weight_bits": [3]})))),
    Case(
        "space: sparsity 1.0 allowed",
        lambda d: _search(
            "--space", str(_space(d, {"sparsity": {"low": 0.5, "high": 1.0, "step": 0.5}})), "--search-sparsity"
        ),
    ),
    Case(
        "space: an absurd grid",
        lambda d: _search("--space", str(_space(d, {"sparsity": {"low": 0, "high": 0.9, "step": 1e-9}}))),
    ),
    Case(
        "budget no candidate can meet",
        lambda d: _search("--objectives", "accuracy,stored_bytes", "--max-size-kb", "0.001"),
    ),
    Case("NaN budget", lambda d: _search("--max-latency-ms", "nan")),
    Case("study name with a path separator", lambda d: ["search", "--study", "a/b", *QUICK]),
    Case("study name with ..", lambda d: ["search", "--study", "..", *QUICK]),
    Case("storage that is not a URL", lambda d: _search("--storage", "just-a-name")),
    Case("unreachable PostgreSQL URL", lambda d: _search("--storage", "postgresql://u:pw@127.0.0.1:9/db")),
    Case("garbage study.db", lambda d: (_study_dir(d, "g", b"not a database" * 10), ["pareto", "--study", "g"])[1]),
    Case(
        "results/<study> is a file",
        lambda d: (_file(_mkdir(d / "results"), "f", b"x"), ["search", "--study", "f", *QUICK])[1],
    ),
    Case("pareto of a study that does not exist", lambda d: ["pareto", "--study", "none"]),
    Case("resume after the dataset file was replaced", lambda d: _resume_with_other_data(d)),
    Case("plot of a study whose trials all failed", lambda d: (_failed_study(d), ["plot", "--study", "failed"])[1]),
    Case(
        "export of a damaged trial file", lambda d: (_damaged_trial(d), ["export", "--study", "dmg", "--trial", "0"])[1]
    ),
    Case(
        "export beside a damaged verification.json",
        lambda d: (_damaged_trial(d, verification=True), ["export", "--study", "dmg", "--trial", "0"])[1],
    ),
    Case(
        "corrupt .tflite",
        lambda d: ["verify", str(_file(d, "m.tflite", b"TFL3" + b"\x00" * 40)), "--min-accuracy", "0.5"],
    ),
    Case("truncated .tflite", lambda d: ["estimate", "--file", str(_file(d, "t.tflite", b"\x18\x00\x00\x00TFL3"))]),
    Case(
        "weights file that is a pickle",
        lambda d: _search(
            "--model", "tests.usermodels:nnx_mlp", "--weights", str(_file(d, "w.pkl", b"\x80\x04K\x01."))
        ),
    ),
    Case(
        "latency table CSV with NaN",
        lambda d: [
            "profile",
            "--device",
            "rpi4",
            "--calibrate",
            str(_file(d, "c.csv", "model,median_ms\ncnn@8/float,nan\n")),
        ],
    ),
]


def _resume_with_other_data(directory: Path) -> list[str]:
    """A finished study on one dataset file, then the same command after the file was replaced."""
    from nas.cli import main

    data = _npz(directory, "data.npz")
    command = ["search", "--study", "swap", "--dataset", str(data), *QUICK, "--objectives", "accuracy,stored_bytes"]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main([*command, "--results-dir", str(directory / "results")]) == 0
    rng = np.random.default_rng(1)
    _npz(directory, "data.npz", x_train=rng.random((60, 8, 8)).astype(np.float32))
    return command


def _failed_study(directory: Path) -> None:
    """A study whose every trial failed: fine-tuning that diverges."""
    from nas.config import FinetuneConfig, SearchConfig, TrainConfig
    from nas.search.context import resolve_problem
    from nas.search.study import run_search

    config = SearchConfig(
        objectives=("accuracy", "stored_bytes"),
        train=TrainConfig(epochs=1),
        finetune=FinetuneConfig(steps=2, learning_rate=1e30),
    )
    run_search(resolve_problem(config), name="failed", trials=2, results_dir=directory / "results", show_progress=False)


def _damaged_trial(directory: Path, verification: bool = False) -> None:
    """A one-trial study whose trial weights file (or its verification record file) was cut short afterwards."""
    from nas.cli import main

    command = ["search", "--study", "dmg", *QUICK, "--objectives", "accuracy,stored_bytes"]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main([*command, "--results-dir", str(directory / "results")]) == 0
    if verification:
        _file(directory / "results" / "dmg", "verification.json", '{"trial-0": {"model": "x"')
    else:
        _truncated(directory / "results" / "dmg" / "trials" / "trial-0.npz")


def _head() -> dict:
    return {"name": "flat", "op": "flatten"}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _npy_as_npz(directory: Path) -> Path:
    path = directory / "single.npz"
    with path.open("wb") as handle:
        np.save(handle, np.zeros(3))
    return path


def _truncated(path: Path) -> Path:
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path


def _tiny(directory: Path) -> Path:
    return _npz(
        directory,
        x_train=np.zeros((3, 8, 8)),
        y_train=np.array([0, 1, 2]),
        x_test=np.zeros((3, 8, 8)),
        y_test=np.array([0, 1, 2]),
    )


def _cifar_dir(directory: Path) -> Path:
    folder = _mkdir(directory / "cifar")
    record = bytes([1]) + bytes(3072)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(record * 2)
    (folder / "data_batch_3.bin").write_bytes(record + record[:100])
    return folder


def run_all() -> list[tuple[Case, Outcome]]:
    """Every case, each in a fresh temporary directory."""
    import tempfile

    outcomes = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as directory:
            outcome = run(case, Path(directory))
            message = outcome.message.replace(str(Path(directory).resolve()), "<dir>").replace(directory, "<dir>")
            outcomes.append((case, Outcome(code=outcome.code, stderr=message, wrote=outcome.wrote)))
    return outcomes


def table(outcomes: list[tuple[Case, Outcome]]) -> str:
    """The README table: each input, the exit code, whether anything was written, and the message."""
    rows = ["| hostile input | exit | wrote | what the user reads |", "|---|---|---|---|"]
    for case, outcome in outcomes:
        message = outcome.message.replace("|", "\\|")
        rows.append(f"| {case.name} | {outcome.code} | {'yes' if outcome.wrote else 'nothing'} | {message} |")
    return "\n".join(rows)


README_START = "<!-- hostile-inputs:start (written by scripts/hostile_inputs_table.py) -->"
README_END = "<!-- hostile-inputs:end -->"


def readme_table(readme: str) -> str:
    """The table between the README's markers."""
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    return readme[start:end].strip()
