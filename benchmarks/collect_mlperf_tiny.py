"""Regenerate the published calibration set latency_models/published/mlperf_tiny.csv from MLPerf Tiny snapshots.

Reads the closed-division results of MLPerf Tiny v0.7, v1.0, v1.1 and v1.2 straight from git snapshots of
mlcommons/tiny_results_v<version> (no working tree needed: ``git ls-tree`` and ``git show``), so every number in
the CSV comes from a results file anyone can open at the recorded commit. One row per version x submitter x
system x benchmark: the performance-mode median throughput (latency = 1000 / median inferences per second, the
runner's own summary line) and, where the system was also run in energy mode, the energy-mode median energy per
inference. Accuracy-mode runs are not read. The system description JSON beside the results gives the board,
processor, clock, memory and software stack.

MLPerf Tiny v1.3 is left out by design (kept for an independent check of the calibration): the script refuses it.

Usage: python benchmarks/collect_mlperf_tiny.py [--snapshot 0.7=/path/to/git/dir ...] [--out DIR]
Without --snapshot, each version is read from /work/.mirror/mlcommons+tiny_results_v<version>/repo (where the
snapshots were fetched). Writes mlperf_tiny.csv and its provenance mlperf_tiny.json in --out.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "latency_models" / "published"
VERSIONS = ("0.7", "1.0", "1.1", "1.2")
EXCLUDED_VERSIONS = ("1.3",)
MIRROR = "/work/.mirror/mlcommons+tiny_results_v{version}/repo"

# The four MLPerf Tiny benchmarks: the reference model and its input (the closed division runs these models).
BENCHMARKS = {
    "ic": ("ResNet-8", "32x32x3"),
    "kws": ("DS-CNN", "49x10x1"),
    "vww": ("MobileNetV1 0.25", "96x96x3"),
    "ad": ("FC autoencoder", "640"),
}
# GreenWaves (v1.0) named the benchmark folders in full.
BENCHMARK_ALIASES = {
    "image_classification": "ic",
    "keyword_spotting": "kws",
    "visual_wake_words": "vww",
    "anomaly_detection": "ad",
}
RESULT_PATH = re.compile(
    r"^closed/(?P<submitter>[^/]+)/results/(?P<system>.+)/(?P<benchmark>[^/]+)/"
    r"(?P<mode>performance|energy|enegy)/(?P<file>[^/]*results\.txt)$"
)
# Result folders whose system description has another name (the rest match by normalized name).
SYSTEM_JSON_OVERRIDES = {
    ("1.0", "OctoML", "microtvm_cmsis_nn/NRF5340-DK"): "system_description_NRF5340DK_microtvm_cmsis_nn.json",
    ("1.0", "OctoML", "microtvm_cmsis_nn/NUCLEO_L4R5ZI"): "system_description_NUCLEO_L4R5ZI_microtvm_cmsis_nn.json",
    ("1.0", "OctoML", "microtvm_native/NUCLEO_L4R5ZI"): "system_description_NUCLEO_L4R5ZI_microtvm_native.json",
}
# The same physical board spelt differently across submissions (case, underscores); "NUCLEO-H7A3ZI" is the
# NUCLEO-H7A3ZI-Q (its part number, STM32H7A3ZIT6Q, is the SMPS "-Q" variant). Other names are kept as stated.
BOARD_ALIASES = {
    "Nucleo-L4R5ZI": "NUCLEO-L4R5ZI",
    "NUCLEO-H7A3ZI": "NUCLEO-H7A3ZI-Q",
    "B_U585I_IOT02A": "B-U585I-IOT02A",
    "NUMAKER_M467HJ": "NUMAKER-M467HJ",
}
# Stacks that run the reference int8 TFLite models when the description states no quantization.
INT8_STACKS = ("X-CUBE-AI", "TFLite Micro", "microTVM", "Plumerai", "Bosch HALE")
COLUMNS = (
    "version",
    "submitter",
    "system",
    "board",
    "processor",
    "core",
    "accelerator",
    "clock_mhz",
    "memory",
    "stack",
    "stack_version",
    "benchmark",
    "model",
    "input_shape",
    "precision",
    "throughput_ips",
    "latency_ms",
    "energy_uj",
    "source",
    "energy_source",
    "system_source",
    "notes",
)


@dataclass(frozen=True)
class Snapshot:
    """A local git snapshot of one tiny_results repository at one commit."""

    version: str
    git_dir: Path
    commit: str

    @property
    def repo(self) -> str:
        return f"mlcommons/tiny_results_v{self.version}"

    def files(self) -> list[str]:
        """Every path in the snapshot's tree."""
        return _git(self.git_dir, "ls-tree", "-r", "--name-only", self.commit).splitlines()

    def read(self, path: str) -> str:
        """A file's text at the snapshot's commit (BOM and carriage returns removed)."""
        return _git(self.git_dir, "show", f"{self.commit}:{path}").lstrip("\ufeff").replace("\r", "")

    def cite(self, path: str) -> str:
        return f"{self.repo}@{self.commit[:12]}:{path}"


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(git_dir), *args], check=True, capture_output=True, text=True, encoding="utf-8"
    ).stdout


def open_snapshot(version: str, git_dir: Path) -> Snapshot:
    """The snapshot of ``version`` in ``git_dir`` at its HEAD; v1.3 is refused (kept out of the set by design)."""
    if version in EXCLUDED_VERSIONS:
        raise SystemExit(f"MLPerf Tiny v{version} is excluded by design (kept for an independent check)")
    if version not in VERSIONS:
        raise SystemExit(f"unknown MLPerf Tiny version {version!r}; expected one of {', '.join(VERSIONS)}")
    return Snapshot(version, git_dir, _git(git_dir, "rev-parse", "HEAD").strip())


# --- result files -----------------------------------------------------------------------------------------------


def median_throughput(text: str) -> tuple[float, str]:
    """Inferences per second from a performance results file, and a note when it is not the runner's median.

    A runner that timed a single window prints no median line (Qualcomm, v1.0); its one window is the result."""
    found = re.findall(r"Median throughput is\s+([\d.]+)\s+inf\./sec\.", text)
    if found:
        return float(found[-1]), ""
    windows = re.findall(r"Throughput\s*:\s*([\d.]+)\s+inf\./sec\.", text)
    if len(windows) == 1:
        return float(windows[0]), "single timing window, no median line: that window's throughput"
    raise ValueError(f"no median throughput and {len(windows)} windows")


def median_energy_uj(text: str) -> float:
    """Microjoules per inference from an energy results file (the runner's median over its windows)."""
    found = re.findall(r"Median energy cost is\s+([\d.]+)\s+uJ/inf\.", text)
    if not found:
        raise ValueError("no 'Median energy cost ... uJ/inf.' line")
    return float(found[-1])


@dataclass
class Measured:
    """The result files of one submitter x system x benchmark."""

    submitter: str
    system: str
    benchmark: str
    performance: str = ""
    energy: str = ""
    energy_dir_typo: bool = False


def result_files(snapshot: Snapshot, excluded: list[str]) -> list[Measured]:
    """The closed division's performance and energy result files, grouped per system and benchmark."""
    grouped: dict[tuple[str, str, str], Measured] = {}
    for path in snapshot.files():
        match = RESULT_PATH.match(path)
        if not match or match["file"].startswith("._"):  # ._* are macOS metadata copies, not results
            continue
        benchmark = BENCHMARK_ALIASES.get(match["benchmark"], match["benchmark"])
        if benchmark not in BENCHMARKS:
            excluded.append(f"{snapshot.cite(path)}: unknown benchmark folder {match['benchmark']!r}")
            continue
        key = (match["submitter"], match["system"], benchmark)
        measured = grouped.setdefault(key, Measured(*key))
        if match["mode"] == "performance":
            measured.performance = path
        else:
            measured.energy = path
            measured.energy_dir_typo = match["mode"] == "enegy"
    return [grouped[key] for key in sorted(grouped)]


# --- system descriptions ----------------------------------------------------------------------------------------


def parse_description(text: str) -> dict[str, Any]:
    """A system description JSON, tolerating the defects submitted files have (a missing comma, a trailing comma,
    a key given twice of which the second is empty): the first non-empty value of each key wins."""

    def first_non_empty(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for key, value in pairs:
            if merged.get(key.strip()) in (None, ""):
                merged[key.strip()] = value
        return merged

    try:
        return dict(json.loads(text, object_pairs_hook=first_non_empty))
    except json.JSONDecodeError:
        repaired = re.sub(r'(["}\]])[ \t]*\n(\s*")', r"\1,\n\2", text)  # a value ending a line with no comma
        repaired = re.sub(r",(\s*[}\]])", r"\1", repaired)  # a trailing comma before the closing brace
        return dict(json.loads(repaired, object_pairs_hook=first_non_empty))


def _normalized(name: str) -> str:
    name = re.sub(r"system_?description", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]", "", name.lower())


def description_path(snapshot: Snapshot, submitter: str, system: str, files: list[str]) -> str:
    """The path of the system description JSON of a result folder (matched by normalized file name)."""
    candidates = [
        path
        for path in files
        if path.startswith(f"closed/{submitter}/systems/") and path.endswith(".json") and "/._" not in path
    ]
    override = SYSTEM_JSON_OVERRIDES.get((snapshot.version, submitter, system))
    if override:
        matches = [path for path in candidates if path.endswith("/" + override)]
    else:
        matches = [path for path in candidates if _normalized(Path(path).stem) == _normalized(system)]
    if len(matches) != 1:
        raise ValueError(f"{snapshot.repo} {submitter}/{system}: {len(matches)} system descriptions match")
    return matches[0]


def _text(value: Any) -> str:
    """A description field as one line of text (nested library dictionaries flattened, marks dropped)."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_text(inner)}".strip() for key, inner in value.items() if _text(inner))
    text = "" if value in (None, "N/A") else str(value)
    return re.sub(r"\s+", " ", text.replace("®", "").replace("™", "")).strip()


def clock_mhz(text: str) -> float | None:
    """The processor clock in MHz from a description's frequency field; None when absent or when it names several
    different clocks (a phone SoC's big and little cores)."""
    values = {
        float(number) * (1000.0 if unit.lower().startswith("g") else 1.0)
        for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(GHz|MHz|M)\b", text, flags=re.IGNORECASE)
    }
    return values.pop() if len(values) == 1 else None


def core_of(processor: str) -> str:
    """The CPU core family of a processor description (``32-bit Arm Cortex-M4 (DSP + FPU)`` -> ``Cortex-M4``)."""
    cortex = re.search(r"Cortex[-\s]?([AMR]\d+\+?)", processor, flags=re.IGNORECASE)
    if cortex:
        return f"Cortex-{cortex[1].upper()}"
    andes = re.search(r"AndesCore\s*(\w+)", processor)
    if andes:
        return f"AndesCore {andes[1].removesuffix(',')}"
    for known in ("RXv2", "RH850G3KH", "HiFi3 + M0", "Kryo", "GAP9", "RISC-V"):
        if known.lower() in processor.lower():
            return known
    return processor


def board_of(description: dict[str, Any]) -> str:
    """The board name as stated, spelt one way where submissions spell the same board differently."""
    board = _text(description.get("Board Name"))
    return BOARD_ALIASES.get(board, board)


def memory_of(description: dict[str, Any]) -> str:
    """On-chip memory as stated: the SoC's, else the processor's."""
    capacity = _text(description.get("SoC Memory capacity (not including processor or accelerator)"))
    if capacity:
        return f"{capacity} {_text(description.get('SoC Memory type'))}".strip()
    return _text(description.get("Processor memory type and capacity"))


def accelerator_of(description: dict[str, Any]) -> str:
    name = _text(description.get("Accelerator"))
    frequency = _text(description.get("Accelerator(s) Frequencies"))
    return f"{name} @ {frequency}" if name and frequency else name


def stack_of(description: dict[str, Any]) -> tuple[str, str]:
    """The software stack (runtime or compiler family, with its kernel library) and its version as stated."""
    framework = _text(description.get("Inference Framework"))
    libraries = _text(description.get("Software Libraries"))
    compiler = _text(description.get("ML Model Compiler(s)"))
    text = " ".join((framework, libraries, compiler))
    sha = re.search(r"(?:commit_id:|tree/|SHA )([0-9a-f]{12})[0-9a-f]*", text)
    commit = sha[1] if sha else ""
    if "X-CUBE-AI" in text:  # stated as 9.0 or 9.0.0 for the same release: written major.minor.patch
        version = _version(r"X-CUBE-AI v?([\d.]+)", text)
        return "X-CUBE-AI", version + ".0" if version.count(".") == 1 else version
    if "Plumerai" in text:
        return "Plumerai Inference Engine", _version(r"Plumerai Inference Engine (\d{4}\.\d+)", text)
    if "microtvm" in text.lower():
        kernels = "CMSIS-NN" if "CMSIS_NN" in libraries else "native"
        return f"microTVM + {kernels}", f"TVM {commit}"
    if "HALE" in text:
        return "Bosch HALE", _version(r"HALE\) version ([\d.]+)", text)
    if "ONNC" in text:
        kernels = "Andes NN" if "andes_nn" in libraries else "CMSIS"
        return f"ONNC + {kernels}", f"{kernels} {commit}".strip() if commit else ""
    if "tflite-micro" in text.lower() or "tensorflow lite for micro" in text.lower():
        return _tflite_micro_stack(libraries), commit
    for marker, stack in (
        ("Syntiant", "Syntiant SDK"),
        ("GapFlow", "GAPflow (GAP SDK)"),
        ("Qualcomm AI Stack", "Qualcomm AI Stack"),
        ("fpgaConvNet", "fpgaConvNet"),
        ("self-developed", "self-developed"),
    ):
        if marker in text:
            return stack, ""
    raise ValueError(f"unrecognized software stack: {text!r}")


def _tflite_micro_stack(libraries: str) -> str:
    if "Andes NN" in libraries:
        return "TFLite Micro + Andes NN"
    if "Gecko SDK" in libraries:
        return "TFLite Micro + Gecko SDK (MVP)"
    if "modified" in libraries:
        return "TFLite Micro + CMSIS-NN (modified)"  # Renesas' port of CMSIS-NN to its RX core
    if "CMSIS" in libraries:
        return "TFLite Micro + CMSIS-NN"
    return "TFLite Micro"


def _version(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found[1].rstrip(".") if found else ""


def precision_of(system: str, stack: str, description: dict[str, Any]) -> str:
    """float32 for systems named float; int8 when the description says so or the stack runs the reference int8
    TFLite model; otherwise ``vendor`` (the submitter's own fixed-point scheme, bit widths not stated)."""
    if "float" in system.lower():
        return "float32"
    quantization = " ".join(
        _text(description.get(key)) for key in ("Quantization Method", "Training and Quantization Notes")
    )
    if "int8" in quantization.lower() or stack.startswith(INT8_STACKS):
        return "int8"
    return "vendor"


# --- rows -------------------------------------------------------------------------------------------------------


def collect(snapshot: Snapshot, excluded: list[str]) -> list[dict[str, str]]:
    """The CSV rows of one snapshot."""
    files = snapshot.files()
    rows = []
    for measured in result_files(snapshot, excluded):
        if not measured.performance:
            excluded.append(f"{snapshot.cite(measured.energy)}: energy-mode result without a performance result")
            continue
        description_file = description_path(snapshot, measured.submitter, measured.system, files)
        description = parse_description(snapshot.read(description_file))
        try:
            rows.append(_row(snapshot, measured, description, description_file))
        except ValueError as error:  # say which files, so the rule to add or the file to read is plain
            raise ValueError(f"{snapshot.cite(measured.performance)} ({description_file}): {error}") from error
    return rows


def _row(snapshot: Snapshot, measured: Measured, description: dict[str, Any], description_file: str) -> dict[str, str]:
    throughput, note = median_throughput(snapshot.read(measured.performance))
    energy = median_energy_uj(snapshot.read(measured.energy)) if measured.energy else None
    stack, stack_version = stack_of(description)
    processor = _text(description.get("Processor(s) Name"))
    clock = clock_mhz(_text(description.get("Processor(s) Frequencies")))
    notes = [note] if note else []
    if measured.energy_dir_typo:
        notes.append("energy folder spelt 'enegy' in the submission")
    if clock is None and _text(description.get("Processor(s) Frequencies")):
        notes.append(f"clock not a single figure: {_text(description.get('Processor(s) Frequencies'))}")
    if _text(description.get("Division")).lower() not in ("", "closed"):
        notes.append(f"description says division {_text(description.get('Division'))} (filed under closed)")
    variant = re.search(r"(max_performance|min_ram)$", measured.system)
    if variant:
        notes.append(f"build option {variant[1]} (the submitter's other systems on this board use the default)")
    operating_system = _text(description.get("Operating System"))
    if operating_system and operating_system.lower() not in ("bare metal", "bare-metal", "bare-mental"):
        notes.append(f"OS: {operating_system}")
    model, shape = BENCHMARKS[measured.benchmark]
    return {
        "version": snapshot.version,
        "submitter": measured.submitter,
        "system": measured.system,
        "board": board_of(description),
        "processor": processor,
        "core": core_of(processor),
        "accelerator": accelerator_of(description),
        "clock_mhz": "" if clock is None else f"{clock:g}",
        "memory": memory_of(description),
        "stack": stack,
        "stack_version": stack_version,
        "benchmark": measured.benchmark,
        "model": model,
        "input_shape": shape,
        "precision": precision_of(measured.system, stack, description),
        "throughput_ips": str(throughput),  # as printed by the runner
        "latency_ms": f"{1000.0 / throughput:.6g}",
        "energy_uj": "" if energy is None else str(energy),
        "source": snapshot.cite(measured.performance),
        "energy_source": snapshot.cite(measured.energy) if measured.energy else "",
        "system_source": snapshot.cite(description_file),
        "notes": "; ".join(notes),
    }


def check_against_summary(snapshot: Snapshot, rows: list[dict[str, str]]) -> dict[str, Any] | None:
    """Compare the rows with the version's official summary table (summary.csv, v1.2 only): every row must be in
    it with the same throughput and energy. Returns what was compared; raises on a disagreement."""
    if "summary.csv" not in snapshot.files():
        return None
    summary = {
        (entry["Organization"], entry["SystemDesc"], entry["Model"]): entry
        for entry in csv.DictReader(snapshot.read("summary.csv").splitlines())
        if entry["Division"] == "closed"
    }
    for row in rows:
        entry = summary.pop((row["submitter"], row["system"], row["benchmark"]))
        if abs(float(entry["Result"]) - float(row["throughput_ips"])) > 1e-3:
            raise ValueError(f"summary.csv throughput {entry['Result']} differs from {row['source']}")
        if entry["HasPower"] == "True" and abs(float(entry["Power"]) - float(row["energy_uj"])) > 1e-3:
            raise ValueError(f"summary.csv energy {entry['Power']} differs from {row['energy_source']}")
    if summary:
        raise ValueError(f"summary.csv rows without a results file: {sorted(summary)}")
    return {"file": snapshot.cite("summary.csv"), "rows_compared": len(rows), "disagreements": 0}


# --- provenance -------------------------------------------------------------------------------------------------


def summarize(rows: list[dict[str, str]]) -> dict[str, Any]:
    """What the next step (fitting) needs to know: (board, stack) points per benchmark, and the boards and cores
    measured under several software stacks (the same hardware differing only in software)."""
    points: dict[str, set[tuple[str, str]]] = defaultdict(set)
    board_stacks: dict[str, set[str]] = defaultdict(set)
    core_stacks: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        points[row["benchmark"]].add((row["board"], row["stack"]))
        board_stacks[row["board"]].add(row["stack"])
        core_stacks[row["core"]].add(row["stack"])
    return {
        "distinct_board_stack_points": {benchmark: len(points[benchmark]) for benchmark in BENCHMARKS},
        "repeated_measurements": repeated(rows),
        "boards_with_several_stacks": {
            board: sorted(stacks) for board, stacks in sorted(board_stacks.items()) if len(stacks) > 1
        },
        "cores_with_several_stacks": {
            core: sorted(stacks) for core, stacks in sorted(core_stacks.items()) if len(stacks) > 1
        },
    }


def repeated(rows: list[dict[str, str]]) -> dict[str, Any]:
    """The same board, core, clock, stack, stack version, precision, build option and benchmark measured more than
    once (another version or submitter): how far apart those latencies are says how much noise a fit must bear."""
    groups: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for row in rows:
        variant = re.search(r"(max_performance|min_ram)$", row["system"])  # Bosch's build options differ on purpose
        build = variant[1] if variant else ""
        key = tuple(row[c] for c in ("board", "core", "clock_mhz", "stack", "stack_version", "precision"))
        key += (build, row["benchmark"])
        groups[key].append(float(row["latency_ms"]))
    spreads = {
        " | ".join(part for part in key if part): round(max(values) / min(values), 3)
        for key, values in sorted(groups.items())
        if len(values) > 1
    }
    return {"groups": len(spreads), "max_over_min_latency": spreads}


def counts(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Rows per version and benchmark, boards, and how many rows carry an energy figure or a clock."""
    per_version: dict[str, dict[str, int]] = {version: dict.fromkeys(BENCHMARKS, 0) for version in VERSIONS}
    for row in rows:
        per_version[row["version"]][row["benchmark"]] += 1
    return {
        "rows": len(rows),
        "rows_per_version_and_benchmark": per_version,
        "distinct_boards": len({row["board"] for row in rows}),
        "distinct_systems": len({(row["version"], row["submitter"], row["system"]) for row in rows}),
        "rows_with_energy": sum(1 for row in rows if row["energy_uj"]),
        "rows_without_clock": sum(1 for row in rows if not row["clock_mhz"]),
        "precision": {p: sum(1 for row in rows if row["precision"] == p) for p in ("int8", "float32", "vendor")},
    }


def provenance(snapshots: list[Snapshot], rows: list[dict[str, str]], excluded: list[str], checks: list[Any]) -> dict:
    """The provenance JSON written beside the CSV."""
    return {
        "what": "MLPerf Tiny closed-division results: performance-mode median latency and energy-mode median "
        "energy per inference, one row per version x submitter x system x benchmark",
        "collected": datetime.date.today().isoformat(),
        "script": "benchmarks/collect_mlperf_tiny.py",
        "sources": [
            {"version": s.version, "repo": f"https://github.com/{s.repo}", "commit": s.commit} for s in snapshots
        ],
        "method": {
            "latency_ms": "1000 / the runner's 'Median throughput is X inf./sec.' line of performance/results.txt "
            "(performance mode; accuracy-mode runs not read)",
            "energy_uj": "the runner's 'Median energy cost is X uJ/inf.' line of energy/results.txt (energy mode; "
            "empty when the system was not run in energy mode)",
            "system": "the system description JSON under closed/<submitter>/systems/ matching the result folder",
            "precision": "float32 for systems named *_float; int8 where the description says int8 or the stack "
            "runs the reference int8 TFLite model; vendor = the submitter's own fixed-point scheme",
            "board": "Board Name upper-cased with dashes; NUCLEO-H7A3ZI and NUCLEO-H7A3ZI-Q are one board",
        },
        "counts": counts(rows),
        "excluded": [
            "MLPerf Tiny v1.3: excluded by design, not fetched or read (kept for an independent check)",
            "open division: other models or preprocessing, not comparable with the reference models",
            "accuracy-mode runs: they time nothing the set needs",
            *excluded,
        ],
        "official_summary_checks": [check for check in checks if check],
        "overlap_with_validation": "benchmarks/analytic_devices.py validates the analytic profiles against v1.0 "
        "STMicroelectronics NUCLEO-H7A3ZI-Q and v1.0 OctoML microtvm_cmsis_nn NUCLEO_L4R5ZI (ic, kws, vww): "
        "rows in this set; a fit on the set must hold them out or that validation is no longer independent",
        "summary": summarize(rows),
    }


def write(rows: list[dict[str, str]], meta: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "mlperf_tiny.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "mlperf_tiny.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snapshot", action="append", default=[], metavar="VERSION=GIT_DIR")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    given = dict(item.split("=", 1) for item in args.snapshot)
    for version in given:
        open_snapshot(version, Path(given[version]))  # refuses v1.3 and unknown versions before any work
    snapshots = [open_snapshot(v, Path(given.get(v, MIRROR.format(version=v)))) for v in VERSIONS]
    rows: list[dict[str, str]] = []
    excluded: list[str] = []
    checks = []
    for snapshot in snapshots:
        version_rows = collect(snapshot, excluded)
        checks.append(check_against_summary(snapshot, version_rows))
        rows += version_rows
    rows.sort(
        key=lambda row: (VERSIONS.index(row["version"]), row["submitter"].lower(), row["system"], row["benchmark"])
    )
    meta = provenance(snapshots, rows, excluded, checks)
    write(rows, meta, args.out)
    print(f"{len(rows)} rows from {len(snapshots)} versions -> {args.out / 'mlperf_tiny.csv'}")
    print(json.dumps(meta["counts"], indent=1))


if __name__ == "__main__":
    main()
