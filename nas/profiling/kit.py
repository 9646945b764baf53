"""The on-device kit: everything needed to measure a device we do not have (``nas profile --kit DIR``).

A kit holds the micro-models of the device's latency table (the same ones ``nas profile`` times on the host,
listed by replaying the profile's derivation), the reference models of its calibration, a manifest naming every
file, the standalone runner (``latency_models/kit_runner.py``, copied as ``run_kit.py``) and a README that says
how to run it, including the TensorFlow Lite Micro harness for microcontrollers. ``nas.profiling.kit_import``
turns the runner's CSV back into the device's measured table.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from latency_models import kit_runner
from latency_models.device import DEVICES_DIR, DeviceProfile, load_device
from latency_models.errors import CostModelError
from latency_models.files import atomic_write_bytes, atomic_write_text
from latency_models.runtimes.litert.timing import TimingProtocol
from latency_models.tflite_keys import operator_names
from nas.profiling.flash_fit import export_random
from nas.profiling.micro import export_micro
from nas.profiling.profile import INVOKE_MICRO, INVOKE_SAMPLES, NOISE_EVERY, Grid, micro_identity, required_micro_models
from nas.profiling.reference import reference_models
from nas.provenance import git_commit

KIT_VERSION = 1
MANIFEST = "manifest.json"
RUNNER = "run_kit.py"


@dataclass(frozen=True, kw_only=True)
class KitSummary:
    """What a written kit holds."""

    directory: Path
    micro_models: int
    reference_models: int
    bytes: int
    operators: tuple[str, ...]


def grid_to_dict(grid: Grid) -> dict[str, Any]:
    """A grid as JSON (tuples become lists)."""
    return json.loads(json.dumps(asdict(grid)))


def grid_from_dict(raw: dict[str, Any]) -> Grid:
    """The grid a manifest recorded (lists back to tuples, nested ones too)."""

    def frozen(value: Any) -> Any:
        return tuple(frozen(v) for v in value) if isinstance(value, list) else value

    return Grid(**{name: frozen(value) for name, value in raw.items()})


def models_digest(models: list[dict[str, str]]) -> str:
    """A digest of a kit's model list: the runner's CSV names it, so results are never read against another kit."""
    return hashlib.sha256(json.dumps(models, sort_keys=True).encode()).hexdigest()[:16]


def reference_file(name: str) -> str:
    """The kit's file name of a reference model (``cnn@8/random0`` -> ``reference/cnn@8_random0.tflite``)."""
    return f"reference/{name.replace('/', '_')}.tflite"


def write_kit(
    name: str,
    target: Path,
    *,
    grid: Grid | None = None,
    directory: Path = DEVICES_DIR,
    show_progress: bool = True,
) -> KitSummary:
    """Writes the kit of device ``name`` into the new directory ``target``.

    Everything is written into a temporary directory beside ``target`` and moved into place at the end, so an
    interrupted kit leaves nothing behind; an existing ``target`` is refused (it may hold a device's results).
    """
    device = load_device(name, directory)
    if target.exists():
        raise CostModelError(f"{target} already exists; choose a new directory for the kit (it may hold results)")
    grid = grid or Grid()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        summary = _fill(device, staging, grid, show_progress)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return KitSummary(**{**asdict(summary), "directory": target})


def _fill(device: DeviceProfile, kit: Path, grid: Grid, show_progress: bool) -> KitSummary:
    _, micros = required_micro_models(device, grid)
    references = reference_models()
    (kit / "micro").mkdir()
    (kit / "reference").mkdir()
    models: list[dict[str, str]] = []
    operators: set[str] = set()
    total = 0
    count = len(micros) + len(references)
    with tqdm(total=count, desc="kit", unit="model", file=sys.stderr, disable=not show_progress) as bar:
        for index, micro in enumerate(micros):
            content = export_micro(micro)
            models.append({"file": f"micro/{index:04d}.tflite", "role": "micro", "name": micro_identity(micro)})
            total += _write(kit / models[-1]["file"], content, operators)
            bar.update(1)
        for reference in references:
            content = export_random(reference.graph, reference.candidate)
            models.append({"file": reference_file(reference.name), "role": "reference", "name": reference.name})
            total += _write(kit / models[-1]["file"], content, operators)
            bar.update(1)
    manifest = kit_manifest(device, grid, models)
    shutil.copyfile(kit_runner.__file__, kit / RUNNER)
    atomic_write_text(kit / "README.md", kit_readme(device, manifest, sorted(operators)))
    atomic_write_text(kit / MANIFEST, json.dumps(manifest, indent=1) + "\n")  # last: a kit with it is whole
    return KitSummary(
        directory=kit,
        micro_models=len(micros),
        reference_models=len(references),
        bytes=total,
        operators=tuple(sorted(operators)),
    )


def _write(path: Path, content: bytes, operators: set[str]) -> int:
    atomic_write_bytes(path, lambda handle: handle.write(content))
    operators |= operator_names(content)
    return len(content)


def kit_manifest(device: DeviceProfile, grid: Grid, models: list[dict[str, str]]) -> dict[str, Any]:
    """The manifest: which file is which model, how to time them, and what the kit was written from."""
    protocol = TimingProtocol(threads=device.threads)
    invoke = next(m for m in models if m["name"] == micro_identity(INVOKE_MICRO))
    return {
        "kit_version": KIT_VERSION,
        "device": device.name,
        "kernel_sets": list(device.kernel_sets),
        "protocol": {
            "warmup": protocol.warmup,
            "rounds": protocol.rounds,
            "invokes_per_round": protocol.invokes_per_round,
            "threads": protocol.threads,
        },
        "invoke": {**invoke, "samples": INVOKE_SAMPLES},
        "noise_every": NOISE_EVERY,
        "grid": grid_to_dict(grid),
        "models": models,
        "digest": models_digest(models),
        "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **git_commit(),
    }


def kit_readme(device: DeviceProfile, manifest: dict[str, Any], operators: list[str]) -> str:
    """How to run the kit on ``device`` and bring the results back."""
    micro = sum(m["role"] == "micro" for m in manifest["models"])
    references = len(manifest["models"]) - micro
    protocol = manifest["protocol"]
    kernels = ", ".join(device.kernel_sets)
    return f"""# On-device kit for {device.name}

{device.description}. Kernel sets to time: {kernels}.
{micro} micro-models (`micro/`) make the latency table; {references} reference models (`reference/`) calibrate it.
`manifest.json` names every file; keep the kit's files together and unchanged.

## Linux boards and phones (LiteRT)

Needs Python 3, numpy and a LiteRT interpreter (`pip install ai-edge-litert`, or `tflite-runtime`).

    python3 run_kit.py                   # everything: the table and its calibration
    python3 run_kit.py --only reference  # the reference models only: a few-shot calibration

Keep the device otherwise idle (no other heavy process) and at its usual clock. The runner writes
`results.csv` and `results.meta.json` only when it has timed every model. Bring both back and run

    nas profile --device {device.name} --import results.csv --kit THIS_DIRECTORY
    nas profile --device {device.name} --calibrate results.csv   # with --only reference

## Microcontrollers (TensorFlow Lite Micro harness)

The runner cannot run there; a small harness times the same files and prints the same CSV:

1. Convert each `.tflite` to a C array (`xxd -i micro/0001.tflite`) and build them into the firmware in
   batches that fit the flash.
2. Register these operators in a `tflite::MicroMutableOpResolver`: {", ".join(operators)}.
   Give the `tflite::MicroInterpreter` a tensor arena in the fastest SRAM ({device.runtime}).
3. Per model: fill the input with any values, invoke {protocol["warmup"]} times, then time {protocol["rounds"]}
   rounds of {protocol["invokes_per_round"]} invokes each with the cycle counter (Cortex-M: enable `DWT->CYCCNT`;
   ESP32-S3: `esp_cpu_get_cycle_count()`), each round's milliseconds divided by its invokes.
4. Reject rounds above median + 5 x MAD (MAD floored at 2% of the median); print one CSV row per model:
   `file,role,model,kernel_set,median_ms,p25_ms,p75_ms,runs`, with `file`, `role` and `model` from
   `manifest.json`, `kernel_set` one of {kernels}, and the median and quartiles of the kept rounds.
5. Time the invoke model (`{manifest["invoke"]["file"]}`, role `invoke`) {INVOKE_SAMPLES} times before all
   others and {INVOKE_SAMPLES} times after; time every {manifest["noise_every"]}th micro-model a second time
   with role `noise`.
6. Collect the rows under the header line into `results.csv` and import it as above.
"""
