"""`nas select`: pick the most accurate front point meeting a service level, export, verify and accept it."""

from __future__ import annotations

import argparse
import sys

from nas.cli import flags

ORDER = 110
NAME = "select"
HELP = (
    "pick the most accurate front point meeting a service level, export, verify and accept it as a new "
    "version with its model card"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.study_flags(parser)
    flags.device_flags(parser, default=None, help="deployment device (default: the study's; others re-score)")
    flags.add_budget_flags(parser, "limit")
    parser.add_argument("--min-accuracy", type=flags.fraction, default=None, help="minimum validation accuracy (0-1)")
    parser.add_argument(
        "--allow-collapsed",
        action="store_true",
        help="accept a model more than 5 points below the uncompressed one or near chance (refused by default)",
    )
    parser.add_argument(
        "--rollback", action="store_true", help="make the version accepted before the current one current again"
    )


def run(args: argparse.Namespace) -> int:
    """Runs `nas select`."""
    from nas.analysis.selection import ServiceLevel, Shortfall
    from nas.deploy.release import releases_dir, rollback
    from nas.deploy.select import select_and_accept
    from nas.paths import StudyPaths

    root = releases_dir(StudyPaths(args.results_dir, args.study).root)
    if args.rollback:
        version = rollback(root)
        print(f"v{version} is current again ({root / f'v{version}'}); the later versions stay on disk")
        return 0
    level = ServiceLevel(limits=flags.budgets(args, ()), min_accuracy=args.min_accuracy)
    command = " ".join(["nas", *sys.argv[1:]]) if sys.argv[1:2] == ["select"] else f"nas select --study {args.study}"
    result = select_and_accept(
        args.study,
        level,
        device=args.device,
        kernel_set=args.kernel_set,
        results_dir=args.results_dir,
        storage=args.storage,
        command=command,
        allow_collapsed=args.allow_collapsed,
    )
    if isinstance(result, Shortfall):
        print(f"nas select: nothing selected: {result.reason}", file=sys.stderr)
        return 1
    print(result.choice.reason)
    if not result.new:
        print(f"that is v{result.version}, the current version already: nothing new accepted ({result.directory})")
        return 0
    audit = result.card["audit"]
    print(
        f"accepted as v{result.version} ({result.directory}): parity passed; worst class {audit['worst_class']} "
        f"{audit['worst_drop']:.1%} below the uncompressed model on test; model_card.md and model_card.json "
        "beside the model; `nas select --rollback` returns to the previous version"
    )
    return 0
