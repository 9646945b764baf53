"""`nas compare`: two studies' fronts on one device; exit 1 when the second regresses."""

from __future__ import annotations

import argparse
import sys

from nas.cli import flags

ORDER = 150
NAME = "compare"
HELP = "compare two studies' fronts on one device; exit 1 when B's front regresses against A's"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    parser.add_argument("study_a", help="the reference study (A)")
    parser.add_argument("study_b", help="the study to judge (B)")
    parser.add_argument("--device", default=None, help="re-score both studies for this device (default: theirs)")
    parser.add_argument(
        "--tolerance",
        type=flags.fraction,
        default=0.01,
        help="B regresses when its hypervolume is more than this fraction below A's (default 0.01)",
    )
    flags.results_dir_flag(parser)


def run(args: argparse.Namespace) -> int:
    """Runs `nas compare`."""
    from nas.analysis.report import compare_studies

    result, device = compare_studies(
        args.study_a, args.study_b, device=args.device, tolerance=args.tolerance, results_dir=args.results_dir
    )
    print(
        f"on {device}: hypervolume A ({args.study_a}, {result.points_a} points) {result.hypervolume_a:.4f}, "
        f"B ({args.study_b}, {result.points_b} points) {result.hypervolume_b:.4f} (shared reference point, "
        f"objectives scaled over both fronts)"
    )
    print(
        f"{result.b_points_dominated_by_a} of B's points are dominated by A's front, "
        f"{result.a_points_dominated_by_b} of A's by B's"
    )
    if result.regressed:
        print(f"B regresses: its hypervolume is more than {args.tolerance:.0%} below A's", file=sys.stderr)
        return 1
    print(f"B does not regress (tolerance {args.tolerance:.0%})")
    return 0
