"""`nas export`: export trials to .tflite and verify them in the LiteRT interpreter."""

from __future__ import annotations

import argparse
import sys

from nas.cli import flags, output

ORDER = 70
NAME = "export"
HELP = "export trials to .tflite and verify them in the LiteRT interpreter"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.under_load_flag(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=flags.non_negative_int, action="append", help="trial number (repeatable)")
    which.add_argument("--pareto", action="store_true", help="every member of the Pareto front")
    which.add_argument("--knee", action="store_true", help="the knee point of the Pareto front")
    flags.threads_flag(parser)
    flags.study_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Runs `nas export`."""
    from nas.deploy.study_export import export_trials

    records = export_trials(
        args.study,
        None if args.pareto or args.knee else args.trial,
        results_dir=args.results_dir,
        storage=args.storage,
        threads=args.threads,
        knee=args.knee,
        under_load=args.under_load,
    )
    for record in records:
        print(
            f"trial {record.trial}: {record.model} ({record.file_bytes} B, gzip {record.gzip_bytes} B), "
            f"JAX test accuracy {record.jax_test_accuracy:.4f}"
        )
        if record.quality_warning:
            print(f"  warning: trial {record.trial}: {record.quality_warning}")
        output.print_device_figures(f"  trial {record.trial}", record.device_figures)
        output.print_checks(f"  trial {record.trial} this host:", record.kernels, record.runtime_memory)
        output.print_cost_check(f"  trial {record.trial} this host:", record.cost_check)
        output.print_device_runtime(f"  trial {record.trial}", record.device_runtime)
        output.print_device_compile(f"  trial {record.trial}", record.device_compile)
        if record.divergence is not None:
            print(f"  first divergent layer: {record.divergence.first_layer}")
    failed = [r.trial for r in records if not r.passed]
    if failed:
        print(f"nas export: error: verification failed for trials {failed} (see verification.json)", file=sys.stderr)
        return 1
    return 0
