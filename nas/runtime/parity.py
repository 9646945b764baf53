"""A trial's parity check: the candidate exported and run in LiteRT, as its export will be, before it may join a front.

The fake-quantized JAX model is what the search scores, and the runtime does not always compute the same thing
(a hybrid int8-weight layer quantizes its input on the fly in one kernel set; a requantized residual add rounds
differently; which combinations diverge depends on the CPU's kernels). Rather than trust a list of known cases,
every fine-tuned trial is lowered to its ``.tflite`` and run with every kernel set of its runtime (LiteRT's
XNNPACK and builtin, through ``latency_models.runtimes``) on the validation split, and it is judged by the rule
an export is judged by (``KernelCheck.passed``: accuracy within the JAX interval, top-1 agreement >= 99%).
Nothing is timed, so the check is deterministic and safe while other work runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.compress.models import Compression
from nas.runtime.export import CALIBRATION_EXAMPLES, export_candidate
from nas.runtime.verify import Reference, allowed_flips, check_kernels
from nas.training.finetune import Trainer, logits
from search_spaces.graph import ModelGraph
from search_spaces.space import Candidate


@dataclass(frozen=True, kw_only=True)
class Parity:
    """How the exported candidate's kernel sets agreed with its JAX model on the validation split."""

    passed: bool
    agreement: dict[str, float]  # per kernel set: top-1 agreement with JAX (ties count as agreement)
    accuracy: dict[str, float]  # per kernel set: validation accuracy in the runtime
    jax_accuracy: float
    seconds: float
    export_error: str = ""  # why the candidate could not be exported at all (then nothing ran)
    flipped: dict[str, int] = field(default_factory=dict)  # per kernel set: predictions that differ from JAX's
    examples: int = 0  # how many were compared
    content: bytes | None = field(default=None, repr=False)  # the exported file (None: it did not export)

    @property
    def reason(self) -> str:
        """One line saying which kernel set diverged, for the trial's record (empty when it passed)."""
        if self.passed:
            return ""
        if self.export_error:
            return f"the candidate does not export: {self.export_error}"
        worst = min(self.agreement, key=lambda name: self.agreement[name])
        flips = self.flipped.get(worst)
        counted = (
            ""
            if flips is None
            else f"{flips} of {self.examples} predictions flipped (allowed {allowed_flips(self.examples)}), "
        )
        return (
            f"the exported model diverges from its JAX model in LiteRT ({worst} kernels: {counted}agreement "
            f"{self.agreement[worst]:.4f}, accuracy {self.accuracy[worst]:.4f} vs JAX {self.jax_accuracy:.4f})"
        )


def runtime_parity(
    graph: ModelGraph,
    trainer: Trainer,
    params: dict[str, Any],
    compression: Compression,
    candidate: Candidate,
    *,
    calibration: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> Parity:
    """Exports the candidate and runs it with every kernel set on ``x``; the export's pass rule decides."""
    start = time.perf_counter()
    reference = Reference(logits=logits(trainer, params, compression, x), labels=y)
    jax_accuracy = round(float((reference.logits.argmax(1) == y).mean()), 4)
    try:
        model = export_candidate(graph, params, compression, candidate, calibration[:CALIBRATION_EXAMPLES])
    # The toolchain's refusals come as any exception type; one candidate's must not end the whole search.
    except Exception as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        return Parity(
            passed=False,
            agreement={},
            accuracy={},
            jax_accuracy=jax_accuracy,
            seconds=time.perf_counter() - start,
            export_error=message,
        )
    checks = check_kernels(model.content, x, y, reference, timed=False)
    return Parity(
        passed=all(check.passed for check in checks),
        agreement={check.delegate: round(float(check.agreement or 0.0), 4) for check in checks},
        accuracy={check.delegate: round(check.accuracy, 4) for check in checks},
        jax_accuracy=jax_accuracy,
        seconds=time.perf_counter() - start,
        content=model.content,
        flipped={check.delegate: len(check.flips) for check in checks},
        examples=len(y),
    )
