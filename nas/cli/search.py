"""`nas search`: run or resume a multi-objective compression search."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nas.cli import flags, output
from nas.config import FINETUNE_TARGETS
from nas.objectives import OBJECTIVE_TERMS

ORDER = 60
NAME = "search"
HELP = "run or resume a multi-objective compression search"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.problem_flags(parser)
    parser.add_argument("--study", required=True, help="study name: results go to results/<study>/")
    parser.add_argument(
        "--trials",
        type=flags.positive_int,
        default=100,
        help="total finished trials the study should hold (resumes count) (default: 100)",
    )
    parser.add_argument(
        "--workers",
        type=flags.positive_int,
        default=1,
        help="processes that run trials at once, each with an equal share of the cores (default: 1); "
        "for several machines run the same command on each with one --storage URL",
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="Optuna storage: an RDB URL (sqlite:///f.db, postgresql://user@host/db) or journal:///f.log "
        "(default: sqlite file results/<study>/study.db)",
    )
    parser.add_argument("--sampler", default=None, help="tpe, nsga2, random or gp (default: tpe, by benchmark)")
    parser.add_argument(
        "--steps",
        "--finetune-steps",
        dest="steps",
        type=flags.non_negative_int,
        default=None,
        help="fine-tuning steps per trial (default: 300)",
    )
    parser.add_argument(
        "--finetune-lr",
        type=flags.learning_rate,
        default=None,
        help="fine-tuning learning rate, or auto: chosen per model by a short sweep on the baseline (default)",
    )
    parser.add_argument(
        "--finetune-targets",
        choices=FINETUNE_TARGETS,
        default=None,
        help="what a candidate is fine-tuned toward: the uncompressed model's outputs (teacher, the default: "
        "knowledge distillation) or the labels",
    )
    parser.add_argument(
        "--host-latency",
        choices=("auto", "predicted", "measured"),
        default="auto",
        help="on the host: each trial's exported file timed in LiteRT inside the trial against a reference model "
        "timed beside it (measured; a rerun's trials then differ), or its latency from the host tables "
        "(predicted); auto, the default: measured for a new study of this host's latency, a resumed study's own "
        "setting",
    )
    parser.add_argument(
        "--no-verify-trials",
        dest="verify_trials",
        action="store_false",
        help="skip each trial's export and run in LiteRT (faster; a front member may then fail its export's "
        "parity check)",
    )
    parser.add_argument(
        "--objectives",
        default="accuracy,latency_ms",
        help="comma-separated terms, accuracy first, then one or more costs: "
        f"{', '.join(OBJECTIVE_TERMS)} (default: accuracy,latency_ms)",
    )
    flags.device_flags(parser, default="host", help="target device profile, see `nas devices` (default: host)")
    parser.add_argument(
        "--search-sparsity",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="search unstructured sparsity (default: only when compressed_bytes is an objective or budget; "
        "no other figure falls with it)",
    )
    flags.add_budget_flags(parser, "budget (constraint)")
    parser.add_argument("--space", type=Path, default=None, help="search space JSON (grids, bits, rules)")
    parser.add_argument(
        "--channel-norm",
        choices=("l1", "l2"),
        default="l2",
        help="filter norm that ranks channels for structured pruning (default: l2)",
    )
    parser.add_argument(
        "--snap-channels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep whole blocks of the device's channel granule when pruning channels (default: on; the Ethos-U "
        "NPUs compute output channels in blocks of 8, other devices have no granule)",
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="seed a new study with sensitivity-based allocations (HAWQ-style) before the sampler takes over",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> None:
    """Runs `nas search`."""
    from nas.analysis.pareto import front_frame, trials_frame
    from nas.paths import check_study_name
    from nas.search.context import resolve_problem
    from nas.search.study import run_search

    check_study_name(args.study)
    problem = resolve_problem(flags.search_config(args), data_dir=args.data_dir)
    _note_stale_host_tables(problem.config)
    summary = run_search(
        problem,
        name=args.study,
        trials=args.trials,
        results_dir=args.results_dir,
        storage=args.storage,
        show_progress=not args.no_progress,
        warm_start=args.warm_start,
        workers=args.workers,
        data_dir=args.data_dir,
    )
    objectives = problem.config.objectives
    front = front_frame(trials_frame(summary.study), objectives)
    print(
        f"study {args.study}: {summary.trials_run} trials run, {summary.resumed_from} resumed; "
        f"{len(front)} on the Pareto front (baseline val accuracy {summary.context.baseline.val_accuracy:.4f})"
    )
    print(output.front_table(front, objectives))
    failed = [t for t in summary.study.trials if "fail_reason" in t.user_attrs]
    if failed:
        print(
            f"{len(failed)} trials failed and were skipped (trial {failed[-1].number}: "
            f"{failed[-1].user_attrs['fail_reason']}); the reason of each is its fail_reason attribute",
            file=sys.stderr,
        )
    print(f"next: nas pareto --study {args.study}  and  nas plot --study {args.study}")


def _note_stale_host_tables(config) -> None:
    """One line on stderr when the host tables were measured on another CPU: what they still decide."""
    from latency_models.device import load_device
    from latency_models.registry import host_tables_current

    measurable = load_device(config.device).measurable_here
    if not (config.uses_device and measurable):
        return
    reason = host_tables_current()
    if reason is None:
        return
    if config.settled(measurable).host_latency == "measured":
        use = "each trial is timed here; the tables only screen budgets before training"
    else:
        use = "host latency is predicted from them; `nas profile --device host` measures this machine"
    print(f"note: the host tables may not fit this machine ({reason}): {use}", file=sys.stderr)
