#!/usr/bin/env python3
"""Times the models of an on-device kit (written by ``nas profile --kit DIR --device NAME``) and writes their
latencies as CSV.

Standalone on purpose: it needs Python 3, numpy and a LiteRT interpreter (``pip install ai-edge-litert``, or
``tflite-runtime`` on boards that only have that), and nothing of the project. The project times its own host
with these same functions, so a kit measures a device exactly as a profile measures the host.

On the device, in the kit's directory::

    python3 run_kit.py                      # every model (the full table; minutes to an hour on a small board)
    python3 run_kit.py --only reference     # the reference models only (few-shot calibration; a few minutes)

Bring back ``results.csv`` and ``results.meta.json`` and, where the kit was written::

    nas profile --device NAME --import results.csv --kit DIR
    nas profile --device NAME --calibrate results.csv     # the reference rows only, as a calibration

Nothing is written until every model has been timed: an interrupted run leaves an earlier CSV intact.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUTLIER_MADS = 5.0
MAD_FLOOR = 0.02  # of the median: rounds of a very steady model are not outliers for a 1% wobble
# The kernel sets a LiteRT interpreter can be asked for, by the name of its op resolver type.
RESOLVERS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}
CSV_COLUMNS = ("file", "role", "model", "kernel_set", "median_ms", "p25_ms", "p75_ms", "runs")
ROLES = ("invoke", "micro", "noise", "reference")


def set_random_input(interpreter, seed: int = 0) -> None:
    """Fills the model's input with seeded uniform [0, 1) values (quantized when the input is integer)."""
    detail = interpreter.get_input_details()[0]
    example = np.random.default_rng(seed).random(detail["shape"], np.float32)
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.floating):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        example = np.clip(np.round(example / scale) + zero_point, info.min, info.max)
    interpreter.set_tensor(detail["index"], example.astype(dtype))


def round_means(interpreter, *, warmup: int, rounds: int, invokes_per_round: int) -> np.ndarray:
    """Per-invoke latency (ms) of each round: ``warmup`` invokes, then ``rounds`` rounds timed as a whole."""
    for _ in range(warmup):
        interpreter.invoke()
    means = np.empty(rounds)
    for index in range(rounds):
        start = time.perf_counter()
        for _ in range(invokes_per_round):
            interpreter.invoke()
        means[index] = (time.perf_counter() - start) * 1000 / invokes_per_round
    return means


def summarize(samples_ms: np.ndarray) -> dict:
    """Median and quartiles (ms) of ``samples_ms`` after rejecting rounds far above the median (another process
    took the core), with the counts kept and rejected."""
    median = float(np.median(samples_ms))
    mad = float(np.median(np.abs(samples_ms - median)))
    kept = samples_ms[samples_ms <= median + OUTLIER_MADS * max(mad, MAD_FLOOR * median)]
    p25, p50, p75 = np.percentile(kept, [25, 50, 75])
    return {
        "median_ms": float(p50),
        "p25_ms": float(p25),
        "p75_ms": float(p75),
        "runs": int(kept.size),
        "rejected": int(samples_ms.size - kept.size),
    }


def interpreter_module():
    """The LiteRT interpreter module this device has (ai-edge-litert first, then tflite-runtime)."""
    try:
        from ai_edge_litert import interpreter as module
    except ImportError:
        try:
            from tflite_runtime import interpreter as module
        except ImportError:
            sys.exit("run_kit.py: no LiteRT interpreter; install one: pip install ai-edge-litert (or tflite-runtime)")
    return module


def load(module, content: bytes, kernel_set: str, threads: int):
    """An allocated interpreter running ``content`` with ``kernel_set``."""
    resolvers = getattr(module, "OpResolverType", None)
    if resolvers is None:  # an old tflite-runtime: only its default (XNNPACK where built in)
        if kernel_set != "xnnpack":
            sys.exit(f"run_kit.py: this interpreter cannot select {kernel_set!r}; pass --kernel-sets xnnpack")
        interpreter = module.Interpreter(model_content=content, num_threads=threads)
    else:
        resolver = getattr(resolvers, RESOLVERS[kernel_set])
        interpreter = module.Interpreter(
            model_content=content, num_threads=threads, experimental_op_resolver_type=resolver
        )
    interpreter.allocate_tensors()
    return interpreter


def time_file(module, path: Path, kernel_set: str, protocol: dict) -> dict:
    """One model file's latency with ``kernel_set`` under the kit's timing protocol."""
    interpreter = load(module, path.read_bytes(), kernel_set, protocol["threads"])
    set_random_input(interpreter)
    means = round_means(
        interpreter,
        warmup=protocol["warmup"],
        rounds=protocol["rounds"],
        invokes_per_round=protocol["invokes_per_round"],
    )
    return summarize(means)


def planned_runs(manifest: dict, only: str, kernel_sets: list[str]) -> list[tuple[dict, str, str]]:
    """(model entry, kernel set, role) in the order they are timed: per kernel set, the invoke model several times
    first and last (a drift of the device shows in neither end alone), every model, and a second timing of every
    ``noise_every``-th micro-model (their spread is the noise floor)."""
    models = [m for m in manifest["models"] if only == "all" or m["role"] == only]
    invoke = manifest["invoke"]
    runs = []
    for kernel_set in kernel_sets:
        if only in ("all", "micro"):
            runs += [(invoke, kernel_set, "invoke")] * invoke["samples"]
        micro_seen = 0
        for model in models:
            runs.append((model, kernel_set, model["role"]))
            if model["role"] == "micro":
                micro_seen += 1
                if micro_seen % manifest["noise_every"] == 0:
                    runs.append((model, kernel_set, "noise"))
        if only in ("all", "micro"):
            runs += [(invoke, kernel_set, "invoke")] * invoke["samples"]
    return runs


def device_facts(module) -> dict:
    """Where the figures were measured: machine, OS, Python, interpreter and CPU model."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    package = "ai-edge-litert" if module.__name__.startswith("ai_edge_litert") else "tflite-runtime"
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "version unknown"
    return {
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "interpreter": f"{package} {version}",
        "cpu": cpu or platform.processor(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file in the same directory, so no half file is ever seen."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run(kit: Path, out: Path, only: str, kernel_sets: list[str] | None, threads: int | None) -> int:
    """Times the kit's models and writes ``out`` and its ``.meta.json``; returns the number of rows."""
    manifest = json.loads((kit / "manifest.json").read_text())
    kernel_sets = kernel_sets or manifest["kernel_sets"]
    unknown = [k for k in kernel_sets if k not in RESOLVERS]
    if unknown:
        sys.exit(
            f"run_kit.py: kernel set {unknown[0]!r} is not a LiteRT interpreter's; time these models with the "
            "harness README.md describes, or pass --kernel-sets xnnpack"
        )
    protocol = dict(manifest["protocol"], threads=threads or manifest["protocol"]["threads"])
    module = interpreter_module()
    runs = planned_runs(manifest, only, kernel_sets)
    rows = []
    for index, (model, kernel_set, role) in enumerate(runs, start=1):
        figures = time_file(module, kit / model["file"], kernel_set, protocol)
        rows.append({"file": model["file"], "role": role, "model": model["name"], "kernel_set": kernel_set, **figures})
        if index % 25 == 0 or index == len(runs):
            print(f"run_kit.py: {index}/{len(runs)} timed", file=sys.stderr, flush=True)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    meta = {"device_facts": device_facts(module), "protocol": protocol, "kit_digest": manifest["digest"], "only": only}
    write_atomically(out.with_suffix(".meta.json"), json.dumps(meta, indent=1) + "\n")
    write_atomically(out, table.getvalue())
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """The command line of the kit's runner."""
    parser = argparse.ArgumentParser(prog="run_kit.py", description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--kit", type=Path, default=here, help="the kit's directory (default: this script's)")
    parser.add_argument("--out", type=Path, default=None, help="the CSV to write (default: KIT/results.csv)")
    parser.add_argument("--only", choices=("all", "micro", "reference"), default="all", help="which models to time")
    parser.add_argument("--kernel-sets", nargs="+", default=None, help="kernel sets to time (default: the kit's)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: the kit's)")
    args = parser.parse_args(argv)
    if not (args.kit / "manifest.json").is_file():
        sys.exit(f"run_kit.py: {args.kit} has no manifest.json; pass --kit with the kit's directory")
    out = args.out or args.kit / "results.csv"
    count = run(args.kit, out, args.only, args.kernel_sets, args.threads)
    print(f"wrote {out} ({count} timings) and {out.with_suffix('.meta.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
