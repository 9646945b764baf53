"""`nas estimate`: the predicted cost of a model, a trial or a .tflite on a device, per layer."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli import flags
from nas.errors import ConfigError

ORDER = 40
NAME = "estimate"
HELP = "predicted cost of a model or a trial on a device, per layer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a model family or spec .json (with --dataset and --precision)")
    source.add_argument("--study", help="a study name (with --trial)")
    source.add_argument("--file", type=Path, help="an exported .tflite (its operators read from the flatbuffer)")
    parser.add_argument("--trial", type=flags.non_negative_int, default=None, help="trial number of --study")
    parser.add_argument("--dataset", default="digits", help="dataset whose input shape the model takes (digits)")
    parser.add_argument("--precision", default="w8a8", help="uniform precision of --model, e.g. w8a8 (default)")
    flags.device_flags(
        parser,
        default=None,
        help="device profile (default: host, or the study's device); 'all' or A,B,...: a table across devices",
    )
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    flags.results_dir_flag(parser)


def run(args: argparse.Namespace) -> None:
    """Runs `nas estimate`."""
    from latency_models.device import available_devices
    from nas.analysis.estimate import (
        Estimate,
        estimate_across,
        estimate_file,
        estimate_spec,
        estimate_trial,
        format_across,
        format_estimate,
    )

    def estimator(device: str | None) -> Estimate:
        kernels = args.kernel_set if device == args.device else None  # a kernel set names one device's
        if args.file is not None:
            return estimate_file(args.file, device or "host", kernels)
        if args.study is not None:
            if args.trial is None:
                raise ConfigError("--study needs --trial N")
            return estimate_trial(
                args.study,
                args.trial,
                results_dir=args.results_dir,
                storage=args.storage,
                device=device,
                kernel_set=kernels,
            )
        return estimate_spec(args.model, args.dataset, args.precision, device or "host", kernels)

    if args.device is not None and (args.device == "all" or "," in args.device):
        devices = available_devices() if args.device == "all" else [d.strip() for d in args.device.split(",")]
        print(format_across(estimate_across(estimator, devices)))
        return
    print(format_estimate(estimator(args.device)))
