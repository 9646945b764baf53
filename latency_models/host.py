"""Facts about the machine a figure was measured on: CPU model and the instruction-set flags that decide which
kernels run (AVX2, FMA, VNNI, NEON dot products), core count, and the LiteRT runtime version."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# Flags that change which LiteRT / XNNPACK kernels run, hence latency (int8 without VNNI is slower than float).
KERNEL_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "asimd",
    "asimddp",
    "fphp",
    "i8mm",
)


def cpu_facts(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """CPU model, architecture, logical cores and the kernel-relevant flags this CPU has."""
    model, flags = platform.processor() or "unknown", set()
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and model in ("unknown", "", platform.machine()):
                model = value.strip()
            elif key in ("flags", "features"):
                flags |= set(value.split())
    return {
        "model": model,
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "flags": [flag for flag in KERNEL_FLAGS if flag in flags],
    }


def runtime_version() -> str:
    """Version of the LiteRT runtime package (``ai-edge-litert``)."""
    try:
        return f"ai-edge-litert {metadata.version('ai-edge-litert')}"
    except metadata.PackageNotFoundError:
        return "ai-edge-litert not installed"
