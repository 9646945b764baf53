"""A trial's exported file timed on this host, inside the trial (``--host-latency measured``).

The file is timed in LiteRT with the study's kernel set by the cost tables' own protocol, so the figure is the
one a profile or an export would measure. This machine drifts: the same model re-timed minutes apart moves by a
median 25% on these microsecond models, back to back by 3%. So a fixed reference model (the study's uniform
int8 candidate, exported from the baseline) is timed right before and right after each file, and the file's
figure is expressed at the machine speed of the search's start:

    latency = file_ms x reference_ms_at_start / mean(reference_ms_before, reference_ms_after)

Timing holds a machine-wide lock, so a study's workers (and other studies) never time at once; the other
worker's training still runs meanwhile, which the reference before and after absorbs as far as it is steady.
A run's workers all take the reference figure the main process timed at the run's start. Within a run a file
is timed once: its figure is kept by its content hash (a later run times it again).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from latency_models.cost import Figure
from latency_models.runtimes.base import Runtime
from latency_models.runtimes.litert.timing import TimingProtocol
from nas.locks import exclusive
from nas.runtime.measured_models import content_key

TIMING_LOCK = Path(tempfile.gettempdir()) / "nas-host-timing.lock"


@dataclass(kw_only=True)
class HostTiming:
    """Times files on this host against a reference model (see the module docstring)."""

    runtime: Runtime
    kernel_set: str
    protocol: TimingProtocol
    reference: bytes
    reference_ms: float  # the reference at the search's start
    timed: int = 0  # how many files it timed (a cached figure is not timed again)
    _figures: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(
        cls, runtime: Runtime, kernel_set: str, threads: int, reference: bytes, *, reference_ms: float | None = None
    ) -> HostTiming:
        """Times the reference once, at the start of a search (unless its figure then is given)."""
        protocol = runtime.timing_protocol(threads)
        if reference_ms is None:
            with exclusive(TIMING_LOCK):
                reference_ms = runtime.time(reference, kernel_set=kernel_set, protocol=protocol).median_ms
        return cls(
            runtime=runtime, kernel_set=kernel_set, protocol=protocol, reference=reference, reference_ms=reference_ms
        )

    @property
    def source(self) -> str:
        """What the figures are: ``ai-edge-litert 2.3.0, xnnpack kernels, on this host, against a reference``."""
        return f"{self.runtime.version()}, {self.kernel_set} kernels, on this host, against a reference timed beside it"

    def describe(self) -> dict[str, object]:
        """What a study records of its timer: the reference's start figure, the kernel set and the protocol."""
        return {
            "reference_ms": self.reference_ms,
            "kernel_set": self.kernel_set,
            "runtime": self.runtime.version(),
            "protocol": self.protocol.describe(),
        }

    def latency(self, content: bytes) -> Figure:
        """The file's per-invoke latency (ms), at the search's starting machine speed; timed once per content."""
        key = content_key(content)
        if key not in self._figures:
            with exclusive(TIMING_LOCK):
                before = self._median(self.reference)
                value = self._median(content)
                after = self._median(self.reference)
            self._figures[key] = value * self.reference_ms / ((before + after) / 2)
            self.timed += 1
        return Figure(value=self._figures[key], provenance="measured", source=self.source)

    def _median(self, content: bytes) -> float:
        return self.runtime.time(content, kernel_set=self.kernel_set, protocol=self.protocol).median_ms
