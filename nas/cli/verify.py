"""`nas verify`: re-run the interpreter checks on any .tflite file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.cli import flags, output

ORDER = 80
NAME = "verify"
HELP = "re-run the interpreter checks on a .tflite file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.under_load_flag(parser)
    parser.add_argument("model", type=Path, help="the .tflite file")
    parser.add_argument("--dataset", default=None, help="test data (default: the study's dataset, else digits)")
    flags.threads_flag(parser)
    parser.add_argument(
        "--min-accuracy",
        type=flags.fraction,
        default=None,
        help="judge test accuracy against this minimum (0-1); needed for a model exported elsewhere",
    )


def run(args: argparse.Namespace) -> int:
    """Runs `nas verify`."""
    from nas.deploy.study_export import verify_file

    verified = verify_file(
        args.model,
        dataset_source=args.dataset,
        threads=args.threads,
        min_accuracy=args.min_accuracy,
        under_load=args.under_load,
    )
    output.print_checks(str(args.model), verified.kernels, verified.runtime_memory)
    for item in verified.not_checked:
        print(f"{args.model} not checked: {item}")
    if verified.accuracy_judged_against is None:
        print(
            f"nas verify: error: {args.model} is not verified: nothing to judge its accuracy against "
            "(pass --min-accuracy)",
            file=sys.stderr,
        )
        return 1
    if not verified.passed:
        print(f"nas verify: error: {args.model} fails against {verified.accuracy_judged_against}", file=sys.stderr)
        return 1
    return 0
