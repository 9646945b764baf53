"""Export and verification of six reference candidates of the default problem (small CNN, digits).

For each candidate (fp32, uniform int8, int16 activations, weight-only int8, mixed int4/int8/fp16, 50% sparse +
channel pruned):
fine-tune with the default K from the default baseline, export through litert-converter / litert-quantizer,
verify in the LiteRT interpreter with XNNPACK and builtin kernels. Reports export and verification seconds,
file and gzip bytes beside the predicted stored bytes, runtime tensor memory (read from the builtin-kernel
interpreter's allocations), accuracies, agreement and measured latency (batch 1, 1 thread, median and
quartiles by the cost tables' protocol).

Usage: python benchmarks/export.py    Writes results/benchmarks/export.json.
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from result_file import write_result

from latency_models.runtimes.litert.memory_plan import PROVENANCE as MEMORY_PROVENANCE
from latency_models.runtimes.litert.memory_plan import tensor_memory
from latency_models.size import stored_bytes
from nas.compress.compression import build_compression
from nas.config import SearchConfig
from nas.provenance import run_provenance
from nas.runtime.export import export_candidate
from nas.runtime.verify import Reference, check_kernels
from nas.search.context import build_context, resolve_problem
from nas.training.finetune import finetune, logits
from search_spaces.space import Candidate, LayerPolicy

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks" / "export.json"


def _candidate(graph, w, a, sparsity=0.0, keep=1.0, **overrides) -> Candidate:
    def policy(name):
        w_bits, a_bits = overrides.get(name, (w, a))
        return LayerPolicy(sparsity=sparsity, channel_keep=keep, weight_bits=w_bits, activation_bits=a_bits)

    return Candidate(policies=tuple((layer.name, policy(layer.name)) for layer in graph.compressible))


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ctx = build_context(resolve_problem(SearchConfig()), results_dir=ROOT / "results")
    graph, data = ctx.graph, ctx.problem.dataset
    candidates = {
        "fp32": _candidate(graph, 32, 32),
        "uniform_int8": _candidate(graph, 8, 8),
        "int16_activations": _candidate(graph, 8, 16),
        "weight_only_int8": _candidate(graph, 8, 32),
        "mixed_int4_int8_fp16": _candidate(graph, 8, 8, conv1=(16, 32), conv2=(4, 8), fc=(8, 8)),
        "sparse50_channel_pruned": _candidate(graph, 8, 8, sparsity=0.5, keep=0.5),
    }
    models = {}
    for label, candidate in candidates.items():
        compression = build_compression(graph, ctx.baseline.params, candidate)
        params, compression = finetune(ctx.trainer, ctx.baseline.params, compression, ctx.x_train, ctx.targets, seed=0)
        reference = Reference(logits=logits(ctx.trainer, params, compression, data.x_test), labels=data.y_test)
        start = time.perf_counter()
        model = export_candidate(graph, params, compression, candidate, data.x_train[:32])
        exported = time.perf_counter()
        checks = check_kernels(model.content, data.x_test, data.y_test, reference)
        verified = time.perf_counter()
        models[label] = {
            "export_seconds": round(exported - start, 3),
            "verify_seconds": round(verified - exported, 3),
            "file_bytes": model.file_bytes,
            "gzip_bytes": model.gzip_bytes,
            "predicted_stored_bytes": stored_bytes(graph, candidate),
            "runtime_tensor_bytes": tensor_memory(model.content).runtime_bytes,
            "jax_test_accuracy": round(float((reference.logits.argmax(1) == data.y_test).mean()), 4),
            "passed": all(c.passed for c in checks),
            **{
                f"{c.delegate}_{key}": value
                for c in checks
                for key, value in (
                    ("accuracy", round(c.accuracy, 4)),
                    ("agreement", None if c.agreement is None else round(c.agreement, 4)),
                    ("latency_median_ms", round(c.latency.median_ms, 4) if c.latency else None),
                    ("latency_p25_ms", round(c.latency.p25_ms, 4) if c.latency else None),
                    ("latency_p75_ms", round(c.latency.p75_ms, 4) if c.latency else None),
                )
            },
        }
        print(label, models[label], flush=True)
    result = {
        "model": "cnn",
        "dataset": "digits",
        "test_examples": len(data.x_test),
        "latency_provenance": "measured on this host: LiteRT 2.3 Python interpreter, batch 1, 1 thread",
        "runtime_memory_provenance": MEMORY_PROVENANCE,
        "all_passed": all(m["passed"] for m in models.values()),
        "models": models,
        "provenance": run_provenance(),
    }
    write_result(OUT, result)


if __name__ == "__main__":
    main()
