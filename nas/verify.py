"""Running an exported model in the real LiteRT interpreter: predictions, agreement with JAX, latency.

Two kernel sets are checked, because they disagree in practice: the default (XNNPACK delegate where it applies)
and the builtin kernels only. Latency is measured on this host (batch 1, after warm-up) and labelled as
measured; it says nothing about another device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from nas.errors import NasError

DELEGATES = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


ACCURACY_TOLERANCE = 0.005
AGREEMENT_MINIMUM = 0.99


class ModelLoadError(NasError):
    """A ``.tflite`` file is missing, truncated or not a LiteRT model."""


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Measured invoke latency percentiles in milliseconds (provenance: measured on this host)."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    runs: int
    threads: int
    delegate: str


def load_interpreter(content: bytes, *, delegate: str = "xnnpack", threads: int = 1) -> Interpreter:
    """An allocated interpreter for ``content``; raises ``ModelLoadError`` with the reason when it cannot load."""
    if delegate not in DELEGATES:
        raise NasError(f"unknown delegate {delegate!r}; use {', '.join(DELEGATES)}")
    try:
        interpreter = Interpreter(
            model_content=content, num_threads=threads, experimental_op_resolver_type=DELEGATES[delegate]
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"not a loadable LiteRT model ({first_line}); re-export it") from None
    return interpreter


def predict_tflite(interpreter: Interpreter, x: np.ndarray) -> np.ndarray:
    """Top-1 predictions for ``x``, one example per invoke (quantized inputs and outputs handled)."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predictions = np.empty(len(x), np.int64)
    for i, example in enumerate(x):
        interpreter.set_tensor(inp["index"], quantize_input(example[None], inp))
        interpreter.invoke()
        predictions[i] = int(np.argmax(dequantize_output(interpreter.get_tensor(out["index"]), out)))
    return predictions


def measure_latency(
    interpreter: Interpreter, example: np.ndarray, *, delegate: str, threads: int, warmup: int = 20, runs: int = 200
) -> Latency:
    """Invoke latency percentiles over ``runs`` invokes after ``warmup`` invokes."""
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], quantize_input(example[None], inp))
    for _ in range(warmup):
        interpreter.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times[i] = time.perf_counter() - start
    p50, p90, p99 = np.percentile(times * 1000, [50, 90, 99])
    return Latency(
        p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), runs=runs, threads=threads, delegate=delegate
    )


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """``x`` in the interpreter's input type (quantized with the tensor's scale and zero point when integer)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor read from the interpreter, as float32 values."""
    if np.issubdtype(detail["dtype"], np.floating):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


@dataclass(frozen=True, kw_only=True)
class Reference:
    """What the JAX model says about the test split: its outputs, hence its top classes (ties included)."""

    logits: np.ndarray
    labels: np.ndarray

    @property
    def top(self) -> np.ndarray:
        """Boolean (examples x classes): the classes tied for the largest output. Quantized logits tie often,
        and which of two equal outputs argmax picks is arbitrary, so a tie is not a disagreement."""
        return self.logits >= self.logits.max(axis=1, keepdims=True)

    @property
    def accuracy_bounds(self) -> tuple[float, float]:
        """JAX accuracy with every tie resolved against, and in favour of, the true label."""
        top = self.top
        hit = top[np.arange(len(self.labels)), self.labels]
        return float((hit & (top.sum(1) == 1)).mean()), float(hit.mean())

    def agreement(self, predictions: np.ndarray) -> float:
        """Share of examples whose exported prediction is (one of) the JAX top classes."""
        return float(self.top[np.arange(len(predictions)), predictions].mean())


@dataclass(frozen=True, kw_only=True)
class KernelCheck:
    """One kernel set's run of an exported model on the test split."""

    delegate: str
    accuracy: float
    agreement: float | None
    jax_accuracy_bounds: tuple[float, float] | None
    latency: Latency

    @property
    def passed(self) -> bool:
        """Accuracy within 0.5 points of the JAX accuracy and top-1 agreement >= 99% (True without reference)."""
        if self.jax_accuracy_bounds is None or self.agreement is None:
            return True
        low, high = self.jax_accuracy_bounds
        within = low - ACCURACY_TOLERANCE <= self.accuracy <= high + ACCURACY_TOLERANCE
        return within and self.agreement >= AGREEMENT_MINIMUM


def check_kernels(
    content: bytes, x: np.ndarray, y: np.ndarray, reference: Reference | None, *, threads: int = 1
) -> list[KernelCheck]:
    """Accuracy, agreement with the JAX reference, and latency, with XNNPACK and with builtin kernels."""
    checks = []
    for delegate in DELEGATES:
        interpreter = load_interpreter(content, delegate=delegate, threads=threads)
        predictions = predict_tflite(interpreter, x)
        checks.append(
            KernelCheck(
                delegate=delegate,
                accuracy=float((predictions == y).mean()),
                agreement=None if reference is None else reference.agreement(predictions),
                jax_accuracy_bounds=None if reference is None else reference.accuracy_bounds,
                latency=measure_latency(interpreter, x[0], delegate=delegate, threads=threads),
            )
        )
    return checks
