"""`nas baselines`: the study's baselines, costed on its device, against its front."""

from __future__ import annotations

import argparse

from nas.cli import flags

ORDER = 140
NAME = "baselines"
HELP = (
    "build the baselines of a study (fp32, int8 PTQ and QAT, 50%% pruning + int8, smaller models from "
    "scratch), cost them on its device, and say whether the front beats each at no more cost"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.study_flags(parser)
    parser.add_argument("--recompute", action="store_true", help="rebuild the baselines kept in baselines.json")


def run(args: argparse.Namespace) -> None:
    """Runs `nas baselines`."""
    from nas.analysis.baselines_report import study_baselines
    from nas.objectives import term

    points, verdicts = study_baselines(
        args.study, results_dir=args.results_dir, storage=args.storage, recompute=args.recompute
    )
    for point, verdict in zip(points, verdicts, strict=True):
        metrics = point["metrics"]
        figures = ", ".join(
            f"{term(name).label} {term(name).format(metrics[term(name).metric])}"
            for name in ("latency_ms", "ram_bytes", "stored_bytes")
            if metrics.get(term(name).metric) is not None
        )
        accuracy = f"val {metrics['val_accuracy']:.4f} test {point['test_accuracy']:.4f}; " if metrics else ""
        print(f"{point['name']:20s} {accuracy}{figures or point.get('unrunnable', '')}")
        print(f"{'':20s} front: {verdict.verdict} ({verdict.detail})")
    runnable = [v for v in verdicts if v.verdict != "not runnable"]
    beaten = sum(v.verdict in ("beaten", "matched") for v in runnable)
    print(f"the front beats or matches {beaten} of {len(runnable)} runnable baselines at no more cost")
