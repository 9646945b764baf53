"""`nas pareto`: the trials table and the front (with test accuracy), or the study re-scored for a device."""

from __future__ import annotations

import argparse
import sys

from nas.cli import flags, output

ORDER = 90
NAME = "pareto"
HELP = "write trials.csv and front.csv (front with test accuracy) and print the front"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.study_flags(parser)
    flags.device_flags(
        parser,
        default=None,
        help="re-score the study for this device without retraining (same accuracies; its costs, feasibility and "
        "front), written to trials.DEVICE.csv and front.DEVICE.csv",
    )


def run(args: argparse.Namespace) -> None:
    """Runs `nas pareto`."""
    from nas.analysis.report import pareto_report, rescored_report

    if args.device is not None:
        rescored = rescored_report(
            args.study, args.device, kernel_set=args.kernel_set, results_dir=args.results_dir, storage=args.storage
        )
        result = rescored.rescored
        feasible = int((result.trials["feasible"] == True).sum())  # noqa: E712
        print(f"study {args.study} re-scored for {result.latency_source}")
        print(f"{feasible} of {len(result.trials)} trials feasible there; front of {len(result.front)}:")
        print(
            output.front_table(result.front, result.objectives) if not result.front.empty else "no feasible trial there"
        )
        print(f"wrote {rescored.trials_csv} and {rescored.front_csv}")
        if rescored.note:
            print(f"note: {rescored.note}", file=sys.stderr)
        return
    report = pareto_report(args.study, results_dir=args.results_dir, storage=args.storage)
    print(output.front_table(report.front, report.objectives) if not report.front.empty else "no feasible trial yet")
    print(f"wrote {report.trials_csv} ({len(report.trials)} trials) and {report.front_csv}")
    if report.note:
        print(f"note: {report.note}", file=sys.stderr)
