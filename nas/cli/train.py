"""`nas train`: train (or load from the cache) the uncompressed baseline."""

from __future__ import annotations

import argparse

from nas.cli import flags

ORDER = 50
NAME = "train"
HELP = "train (or load from cache) the uncompressed baseline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.problem_flags(parser)


def run(args: argparse.Namespace) -> None:
    """Runs `nas train`."""
    from nas.progress import epoch_progress
    from nas.search.context import build_context, resolve_problem

    problem = resolve_problem(flags.search_config(args), data_dir=args.data_dir)
    context = build_context(problem, results_dir=args.results_dir, progress=epoch_progress())
    source = "cached" if context.baseline.from_cache else "trained"
    print(
        f"baseline {source}: val accuracy {context.baseline.val_accuracy:.4f}, "
        f"test accuracy {context.baseline.test_accuracy:.4f} ({context.baseline.cache_dir})"
    )
