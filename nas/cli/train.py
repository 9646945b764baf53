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
    from nas.search.context import resolve_problem
    from nas.training.train import train_baseline

    problem = resolve_problem(flags.search_config(args), data_dir=args.data_dir)
    # The baseline only: the search chooses (and caches) its fine-tuning rate when it starts.
    baseline = train_baseline(
        problem.graph,
        problem.dataset,
        problem.config.train,
        results_dir=args.results_dir,
        progress=epoch_progress(),
        weights=problem.config.weights,
    )
    source = "cached" if baseline.from_cache else "trained"
    print(
        f"baseline {source}: val accuracy {baseline.val_accuracy:.4f}, "
        f"test accuracy {baseline.test_accuracy:.4f} ({baseline.cache_dir})"
    )
