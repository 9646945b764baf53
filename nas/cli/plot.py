"""`nas plot`: the front and per-layer plots of a study, and its fronts across devices."""

from __future__ import annotations

import argparse

from nas.cli import flags

ORDER = 100
NAME = "plot"
HELP = "draw pareto.png and layers.png for a study"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.study_flags(parser)
    parser.add_argument(
        "--devices",
        default=None,
        metavar="A,B,...",
        help="also draw pareto_devices.png: the study's front on each of these devices side by side (or 'all')",
    )


def run(args: argparse.Namespace) -> None:
    """Runs `nas plot`."""
    from nas.analysis.report import plot_report

    for path in plot_report(args.study, results_dir=args.results_dir, storage=args.storage):
        print(f"wrote {path}")
    if args.devices:
        from latency_models.device import available_devices
        from nas.analysis.report import device_fronts_plot

        devices = available_devices() if args.devices == "all" else [d.strip() for d in args.devices.split(",")]
        path = device_fronts_plot(args.study, devices, results_dir=args.results_dir, storage=args.storage)
        print(f"wrote {path}")
