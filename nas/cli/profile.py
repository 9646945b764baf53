"""`nas profile`: measure a device's latency tables, calibrate them, or write and import the on-device kit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.activity import require_quiet_machine
from nas.cli import flags, output
from nas.errors import ConfigError

ORDER = 30
NAME = "profile"
HELP = "measure a device's latency tables (the host: here and now)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    parser.add_argument("--device", required=True, help="device profile name (only 'host' can be measured here)")
    parser.add_argument(
        "--quick", action="store_true", help="a small grid (a few minutes; for trying the command, not for use)"
    )
    parser.add_argument(
        "--if-cpu-differs",
        action="store_true",
        help="only when the host tables were measured on another CPU (or are missing): profile, or with "
        "--calibrate keep the shipped tables and scale them to this host by its reference models",
    )
    modes = parser.add_argument_group("separate steps (one at a time; without any, the device's tables are measured)")
    modes.add_argument(
        "--calibrate",
        nargs="?",
        const="",
        metavar="FILE.csv",
        help="keep the tables; refit the device's whole-model calibration: alone, time the reference models on "
        "this host now (10 s; corrects the machine's drift); with FILE.csv (model,median_ms), fit it to reference "
        "models measured on the device (any device, analytic ones too)",
    )
    parser.add_argument("--kernel-set", default=None, help="kernel set a --calibrate FILE.csv was measured with")
    modes.add_argument(
        "--add-exports",
        action="store_true",
        help="keep the tables; fold every export under --results-dir whose latency was measured on this host "
        "into the tables' calibration",
    )
    modes.add_argument(
        "--kit",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the on-device kit for --device into the new directory DIR (micro-models, reference models, "
        "manifest, runner, TFLite Micro harness notes); with --import: the kit the CSV was measured with",
    )
    modes.add_argument(
        "--import",
        dest="import_csv",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="turn the kit runner's CSV into --device's measured table and calibration (kit: --kit, or the CSV's "
        "directory)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    flags.under_load_flag(parser)
    flags.results_dir_flag(parser)


def run(args: argparse.Namespace) -> None:
    """Runs `nas profile`."""
    from latency_models.device import load_device
    from latency_models.registry import host_tables_current
    from nas.profiling.run import add_exports_and_save, calibrate_and_save, calibrate_from_csv, profile_and_save

    kit_step = args.import_csv is not None or args.kit is not None
    if sum([args.calibrate is not None, args.add_exports, kit_step]) > 1:
        raise ConfigError("--calibrate, --add-exports and --kit / --import are separate steps; run one at a time")
    if args.import_csv is not None:
        _import_kit(args)
        return
    if args.kit is not None:
        _write_kit(args)
        return
    if args.add_exports:
        for path, calibration, used in add_exports_and_save(args.device, args.results_dir).values():
            print(f"wrote {path} with {used} exports: {output.calibration_line(calibration)}")
        return
    if args.calibrate:
        path, calibration = calibrate_from_csv(args.device, Path(args.calibrate), kernel_set=args.kernel_set)
        print(f"wrote {path}: {output.calibration_line(calibration)}")
        return
    here = load_device(args.device).measurable_here
    if args.if_cpu_differs and here:
        reason = host_tables_current()
        if reason is None:
            print("host tables were measured on this CPU: nothing to do")
            return
        step = "calibrating the tables to this host" if args.calibrate is not None else "profiling this host"
        print(f"{step}: {reason}", file=sys.stderr)
    if here:
        require_quiet_machine("profiling", under_load=args.under_load)
    if args.calibrate is not None:
        for path, calibration in calibrate_and_save(args.device, show_progress=not args.no_progress).values():
            print(f"wrote {path}: {output.calibration_line(calibration)}")
        return
    written = profile_and_save(args.device, quick=args.quick, show_progress=not args.no_progress)
    for path, table in written:
        print(f"wrote {path} ({len(table.entries)} entries, noise floor {table.provenance['noise_floor_pct']}%)")


def _write_kit(args: argparse.Namespace) -> None:
    from nas.profiling.kit import write_kit
    from nas.profiling.run import QUICK_GRID

    summary = write_kit(
        args.device, args.kit, grid=QUICK_GRID if args.quick else None, show_progress=not args.no_progress
    )
    print(
        f"wrote {summary.directory}: {summary.micro_models} micro-models and {summary.reference_models} reference "
        f"models ({summary.bytes / 1e6:.1f} MB); on the device: python3 run_kit.py, then "
        f"`nas profile --device {args.device} --import results.csv --kit {summary.directory}` "
        "(README.md in the kit has the TFLite Micro harness for microcontrollers)"
    )


def _import_kit(args: argparse.Namespace) -> None:
    from nas.profiling.kit_import import import_kit_results

    for item in import_kit_results(args.device, args.import_csv, kit=args.kit):
        noise = item.table.provenance.get("noise_floor_pct")
        print(
            f"wrote {item.path} ({len(item.table.entries)} entries, measured on the device, noise floor {noise}%): "
            f"{output.calibration_line(item.calibration)}"
        )
