"""`nas analyze`: per-layer diagnostics, each single-knob move's accuracy loss beside the latency it saves."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli import flags

ORDER = 120
NAME = "analyze"
HELP = (
    "per-layer diagnostics: accuracy lost by each precision and pruning step beside the device latency it "
    "saves, ranked by impact to cost (table and plot)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.problem_flags(parser)
    flags.device_flags(parser, default="host", help="device profile (default: host)")


def run(args: argparse.Namespace) -> None:
    """Runs `nas analyze`."""
    from nas.analysis.diagnostics import diagnose, draw_moves, moves_frame
    from nas.analysis.pareto import write_csv
    from nas.search.context import build_context, resolve_problem

    problem = resolve_problem(flags.search_config(args), data_dir=args.data_dir)
    context = build_context(problem, results_dir=args.results_dir)
    moves = diagnose(context)
    stem = f"{Path(args.model.replace(':', '.')).stem}_{Path(args.dataset).stem}_{args.device}"
    directory = args.results_dir / "analyze"
    frame = moves_frame(moves)
    write_csv(directory / f"{stem}.csv", frame)
    title = f"{args.model} on {args.dataset}, {args.device}: single-knob moves"
    draw_moves(moves, directory / f"{stem}.png", title)
    shown = frame.head(15)[["knob", "value", "layer_latency_share", "accuracy_drop", "latency_saved_share"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {directory / f'{stem}.csv'} ({len(frame)} moves, best first) and {directory / f'{stem}.png'}")
