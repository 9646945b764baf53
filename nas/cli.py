"""The ``nas`` command line. Intentionally thin: it parses flags into a config and calls the library."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from latency_models.console import VERBOSE_ENV
from nas.activity import require_quiet_machine
from nas.errors import USER_ERRORS, ConfigError
from nas.objectives import OBJECTIVE_TERMS

if TYPE_CHECKING:
    from latency_models.calibration import Calibration

DESCRIPTION = "Hardware-aware compression search (per-layer sparsity x mixed precision) for JAX/Flax models."


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) that point at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _learning_rate(text: str) -> float | None:
    """A positive learning rate, or None for ``auto``."""
    return None if text == "auto" else _positive_float(text)


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="where studies and cached baselines live (default: results)",
    )


def _under_load_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--under-load",
        action="store_true",
        help="time the host even while searches run on this machine (their load makes the timings wrong)",
    )


def _problem_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="cnn",
        help="model family (mlp, cnn, dscnn, mobilenet_v1, resnet8), a spec .json, or your own trained Flax model "
        "as package.module:factory (a function returning (linen_module, variables) or an nnx module) (default: cnn)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="trained variables for --model package.module:factory: a Flax .msgpack (flax.serialization.to_bytes) "
        "or an .npz keyed by leaf path (nas.usermodel.source.save_weights); the factory's own variables otherwise",
    )
    parser.add_argument(
        "--width", type=_positive_float, default=None, help="width multiplier override for the model (0 < w <= 4)"
    )
    parser.add_argument(
        "--dataset",
        default="digits",
        help="digits, mnist, fashion_mnist, cifar10, a .npz (x_train, y_train, x_test, y_test) "
        "or a directory of IDX / CIFAR-10 binary files (default: digits)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="download cache for mnist / fashion_mnist / cifar10 (default: $NAS_DATA_DIR or "
        "~/.cache/nas-compress/datasets)",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seed for training and sampling")
    parser.add_argument("--epochs", type=_positive_int, default=60, help="baseline training epochs (default: 60)")


def build_parser() -> argparse.ArgumentParser:
    """The full ``nas`` parser with its subcommands."""
    parser = _Parser(prog="nas", description=DESCRIPTION)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show what third-party libraries print (native start-up logs, progress bars, Optuna's log)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list the built-in model families")
    models.set_defaults(run=_run_models)

    devices = sub.add_parser("devices", help="list the device profiles and the kind of each latency table")
    devices.set_defaults(run=_run_devices)

    profile = sub.add_parser("profile", help="measure a device's latency tables (the host: here and now)")
    profile.add_argument("--device", required=True, help="device profile name (only 'host' can be measured here)")
    profile.add_argument(
        "--quick", action="store_true", help="a small grid (a few minutes; for trying the command, not for use)"
    )
    profile.add_argument(
        "--if-cpu-differs",
        action="store_true",
        help="profile only when the host tables were measured on another CPU (or are missing)",
    )
    profile.add_argument(
        "--calibrate",
        nargs="?",
        const="",
        metavar="FILE.csv",
        help="keep the tables; refit the device's whole-model calibration: alone, time the reference models on "
        "this host now (10 s; corrects the machine's drift); with FILE.csv (model,median_ms), fit it to reference "
        "models measured on the device (any device, analytic ones too)",
    )
    profile.add_argument("--kernel-set", default=None, help="kernel set a --calibrate FILE.csv was measured with")
    profile.add_argument(
        "--add-exports",
        action="store_true",
        help="keep the tables; fold every export under --results-dir whose latency was measured on this host "
        "into the tables' calibration",
    )
    profile.add_argument(
        "--kit",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the on-device kit for --device into the new directory DIR (micro-models, reference models, "
        "manifest, runner, TFLite Micro harness notes); with --import: the kit the CSV was measured with",
    )
    profile.add_argument(
        "--import",
        dest="import_csv",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="turn the kit runner's CSV into --device's measured table and calibration (kit: --kit, or the CSV's "
        "directory)",
    )
    profile.add_argument("--no-progress", action="store_true", help="no progress bar")
    _under_load_flag(profile)
    _common(profile)
    profile.set_defaults(run=_run_profile)

    estimate = sub.add_parser("estimate", help="predicted cost of a model or a trial on a device, per layer")
    source = estimate.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a model family or spec .json (with --dataset and --precision)")
    source.add_argument("--study", help="a study name (with --trial)")
    source.add_argument("--file", type=Path, help="an exported .tflite (its operators read from the flatbuffer)")
    estimate.add_argument("--trial", type=_non_negative_int, default=None, help="trial number of --study")
    estimate.add_argument("--dataset", default="digits", help="dataset whose input shape the model takes (digits)")
    estimate.add_argument("--precision", default="w8a8", help="uniform precision of --model, e.g. w8a8 (default)")
    estimate.add_argument(
        "--device",
        default=None,
        help="device profile (default: host, or the study's device); 'all' or A,B,...: a table across devices",
    )
    estimate.add_argument("--kernel-set", default=None, help="kernel set (default: the device's first)")
    estimate.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    _common(estimate)
    estimate.set_defaults(run=_run_estimate)

    train = sub.add_parser("train", help="train (or load from cache) the uncompressed baseline")
    _problem_flags(train)
    _common(train)
    train.set_defaults(run=_run_train)

    search = sub.add_parser("search", help="run or resume a multi-objective compression search")
    _problem_flags(search)
    search.add_argument("--study", required=True, help="study name: results go to results/<study>/")
    search.add_argument(
        "--trials",
        type=_positive_int,
        default=100,
        help="total finished trials the study should hold (resumes count) (default: 100)",
    )
    search.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes that run trials at once, each with an equal share of the cores (default: 1); "
        "for several machines run the same command on each with one --storage URL",
    )
    search.add_argument(
        "--storage",
        default=None,
        help="Optuna storage: an RDB URL (sqlite:///f.db, postgresql://user@host/db) or journal:///f.log "
        "(default: sqlite file results/<study>/study.db)",
    )
    search.add_argument("--sampler", default=None, help="tpe, nsga2, random or gp (default: tpe, by benchmark)")
    search.add_argument(
        "--steps",
        "--finetune-steps",
        dest="steps",
        type=_non_negative_int,
        default=None,
        help="fine-tuning steps per trial (default: 300)",
    )
    search.add_argument(
        "--finetune-lr",
        type=_learning_rate,
        default=None,
        help="fine-tuning learning rate, or auto: chosen per model by a short sweep on the baseline (default)",
    )
    search.add_argument(
        "--no-verify-trials",
        dest="verify_trials",
        action="store_false",
        help="skip each trial's export and run in LiteRT (faster; a front member may then fail its export's "
        "parity check)",
    )
    search.add_argument(
        "--objectives",
        default="accuracy,latency_ms",
        help="comma-separated terms, accuracy first, then one or more costs: "
        f"{', '.join(OBJECTIVE_TERMS)} (default: accuracy,latency_ms)",
    )
    search.add_argument("--device", default="host", help="target device profile, see `nas devices` (default: host)")
    search.add_argument(
        "--kernel-set", default=None, help="the device's kernel set for latency (default: the device's first)"
    )
    search.add_argument(
        "--search-sparsity",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="search unstructured sparsity (default: only when compressed_bytes is an objective or budget; "
        "no other figure falls with it)",
    )
    for flag, (unit, applies_to) in budget_flags().items():
        search.add_argument(
            flag, type=float, default=None, help=f"budget (constraint) in {unit} on {' or '.join(applies_to)}"
        )
    search.add_argument("--space", type=Path, default=None, help="search space JSON (grids, bits, rules)")
    search.add_argument(
        "--channel-norm",
        choices=("l1", "l2"),
        default="l2",
        help="filter norm that ranks channels for structured pruning (default: l2)",
    )
    search.add_argument(
        "--warm-start",
        action="store_true",
        help="seed a new study with sensitivity-based allocations (HAWQ-style) before the sampler takes over",
    )
    search.add_argument("--no-progress", action="store_true", help="no progress bars")
    _common(search)
    search.set_defaults(run=_run_search)

    export = sub.add_parser("export", help="export trials to .tflite and verify them in the LiteRT interpreter")
    _under_load_flag(export)
    export.add_argument("--study", required=True, help="study name")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=_non_negative_int, action="append", help="trial number (repeatable)")
    which.add_argument("--pareto", action="store_true", help="every member of the Pareto front")
    which.add_argument("--knee", action="store_true", help="the knee point of the Pareto front")
    export.add_argument("--threads", type=_positive_int, default=1, help="interpreter threads for latency (default 1)")
    export.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    _common(export)
    export.set_defaults(run=_run_export)

    verify = sub.add_parser("verify", help="re-run the interpreter checks on a .tflite file")
    _under_load_flag(verify)
    verify.add_argument("model", type=Path, help="the .tflite file")
    verify.add_argument("--dataset", default=None, help="test data (default: the study's dataset, else digits)")
    verify.add_argument("--threads", type=_positive_int, default=1, help="interpreter threads (default 1)")
    verify.add_argument(
        "--min-accuracy",
        type=_fraction,
        default=None,
        help="judge test accuracy against this minimum (0-1); needed for a model exported elsewhere",
    )
    verify.set_defaults(run=_run_verify)

    for name, helptext, runner in (
        ("pareto", "write trials.csv and front.csv (front with test accuracy) and print the front", _run_pareto),
        ("plot", "draw pareto.png and layers.png for a study", _run_plot),
    ):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("--study", required=True, help="study name")
        command.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
        _common(command)
        command.set_defaults(run=runner)
    select = sub.add_parser(
        "select",
        help="pick the most accurate front point meeting a service level, export, verify and accept it as a "
        "new version with its model card",
    )
    select.add_argument("--study", required=True, help="study name")
    select.add_argument("--device", default=None, help="deployment device (default: the study's; others re-score)")
    select.add_argument("--kernel-set", default=None, help="kernel set of --device (default: its first)")
    for flag, (unit, applies_to) in budget_flags().items():
        select.add_argument(flag, type=float, default=None, help=f"limit in {unit} on {' or '.join(applies_to)}")
    select.add_argument("--min-accuracy", type=_fraction, default=None, help="minimum validation accuracy (0-1)")
    select.add_argument(
        "--allow-collapsed",
        action="store_true",
        help="accept a model more than 5 points below the uncompressed one or near chance (refused by default)",
    )
    select.add_argument(
        "--rollback", action="store_true", help="make the version accepted before the current one current again"
    )
    select.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    _common(select)
    select.set_defaults(run=_run_select)
    analyze = sub.add_parser(
        "analyze",
        help="per-layer diagnostics: accuracy lost by each precision and pruning step beside the device latency "
        "it saves, ranked by impact to cost (table and plot)",
    )
    _problem_flags(analyze)
    analyze.add_argument("--device", default="host", help="device profile (default: host)")
    analyze.add_argument("--kernel-set", default=None, help="kernel set of --device (default: its first)")
    _common(analyze)
    analyze.set_defaults(run=_run_analyze)
    report = sub.add_parser(
        "report", help="write results/<study>/report.html (self-contained) and report.md: the whole study"
    )
    report.add_argument("--study", required=True, help="study name")
    report.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    _common(report)
    report.set_defaults(run=_run_report)
    baselines = sub.add_parser(
        "baselines",
        help="build the baselines of a study (fp32, int8 PTQ and QAT, 50%% pruning + int8, smaller models from "
        "scratch), cost them on its device, and say whether the front beats each at no more cost",
    )
    baselines.add_argument("--study", required=True, help="study name")
    baselines.add_argument("--recompute", action="store_true", help="rebuild the baselines kept in baselines.json")
    baselines.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    _common(baselines)
    baselines.set_defaults(run=_run_baselines)
    compare = sub.add_parser(
        "compare", help="compare two studies' fronts on one device; exit 1 when B's front regresses against A's"
    )
    compare.add_argument("study_a", help="the reference study (A)")
    compare.add_argument("study_b", help="the study to judge (B)")
    compare.add_argument("--device", default=None, help="re-score both studies for this device (default: theirs)")
    compare.add_argument(
        "--tolerance",
        type=_fraction,
        default=0.01,
        help="B regresses when its hypervolume is more than this fraction below A's (default 0.01)",
    )
    _common(compare)
    compare.set_defaults(run=_run_compare)
    pareto = sub.choices["pareto"]
    pareto.add_argument(
        "--device",
        default=None,
        help="re-score the study for this device without retraining (same accuracies; its costs, feasibility and "
        "front), written to trials.DEVICE.csv and front.DEVICE.csv",
    )
    pareto.add_argument("--kernel-set", default=None, help="kernel set of --device (default: its first)")
    sub.choices["plot"].add_argument(
        "--devices",
        default=None,
        metavar="A,B,...",
        help="also draw pareto_devices.png: the study's front on each of these devices side by side (or 'all')",
    )
    return parser


def _config(args: argparse.Namespace):
    from latency_models.device import load_device
    from nas.config import DEFAULT_SAMPLER, SearchConfig, TrainConfig, finetune_config, load_space_file
    from nas.search.context import with_device_limits

    objectives = tuple(name.strip() for name in getattr(args, "objectives", "accuracy,latency_ms").split(","))
    steps = getattr(args, "steps", None)
    space = getattr(args, "space", None)
    model, weights = _model_reference(args)
    return SearchConfig(
        model=model,
        weights=weights,
        width_multiplier=args.width,
        dataset=args.dataset,
        space=load_space_file(space) if space else None,
        objectives=objectives,
        budgets=with_device_limits(_budgets(args, objectives), load_device(getattr(args, "device", "host"))),
        device=getattr(args, "device", "host"),
        kernel_set=getattr(args, "kernel_set", None),
        search_sparsity=getattr(args, "search_sparsity", None),
        channel_norm=getattr(args, "channel_norm", "l2"),
        sampler=getattr(args, "sampler", None) or DEFAULT_SAMPLER,
        seed=args.seed,
        train=TrainConfig(epochs=args.epochs, seed=args.seed),
        finetune=finetune_config(steps, getattr(args, "finetune_lr", None)),
        verify_trials=getattr(args, "verify_trials", True),
    )


def _model_reference(args: argparse.Namespace) -> tuple[str, str | None]:
    """``--model`` / ``--weights`` as the config stores them; a user's factory is discovered first (one line)."""
    if ":" not in args.model and args.weights is None:
        return args.model, None
    from nas.api import model_reference
    from nas.training.data import load_dataset

    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    reference = model_reference(args.model, weights=args.weights, dataset=dataset, results_dir=args.results_dir)
    if reference.discovered is not None:
        graph = reference.discovered.graph
        print(
            f"discovered {args.model}: {len(graph.compressible)} compressible layers, "
            f"{len(graph.prunable_groups)} prunable channel groups ({reference.model})",
            file=sys.stderr,
        )
    return reference.model, reference.weights


def budget_flags() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each budget flag with its unit and the terms it can bound (in registry order)."""
    flags: dict[str, tuple[str, tuple[str, ...]]] = {}
    for term in OBJECTIVE_TERMS.values():
        if term.budget_flag:
            unit, names = flags.get(term.budget_flag, (term.budget_unit or term.unit, ()))
            flags[term.budget_flag] = (unit, (*names, term.name))
    return flags


def _budgets(args: argparse.Namespace, objectives: tuple[str, ...]) -> dict[str, float]:
    """Budget flags as limits in raw units, each on the first objective it can bound (else its first term)."""
    from nas.objectives import term

    budgets = {}
    for flag, (_, names) in budget_flags().items():
        shown = getattr(args, flag.removeprefix("--").replace("-", "_"), None)
        if shown is None:
            continue
        name = next((o for o in objectives if o in names), names[0])
        budgets[name] = term(name).to_raw(shown) if shown > 0 else shown
    return budgets


def _run_models(args: argparse.Namespace) -> None:
    from search_spaces.spec import available_models, load_model_spec

    for name in available_models():
        spec = load_model_spec(name)
        layers = sum(node.is_compressible for node in spec.nodes)
        print(f"{name:14s} {layers:3d} compressible layers  {spec.description}")


def _run_devices(args: argparse.Namespace) -> None:
    from latency_models.registry import available_devices, load_device, table_summaries

    for name in available_devices():
        device = load_device(name)
        print(f"{name:10s} {device.description}")
        print(
            f"{'':10s} runtime {device.runtime}; threads {device.threads}; RAM {_limit(device.ram_bytes)}, "
            f"flash {_limit(device.flash_bytes)}; active power {device.active_power.watts:g} W"
        )
        for table in table_summaries(device):
            entries = f"{table.entries} entries, " if table.entries else ""
            print(f"{'':10s} latency [{table.kernel_set}]: {table.kind} ({entries}{table.detail})")


def _limit(value: int | None) -> str:
    return "no limit" if value is None else f"{value / 1024:g} KiB"


def _run_profile(args: argparse.Namespace) -> None:
    from latency_models.registry import host_tables_current
    from nas.profiling.run import add_exports_and_save, calibrate_and_save, calibrate_from_csv, profile_and_save

    kit_step = args.import_csv is not None or args.kit is not None
    if sum([args.calibrate is not None, args.add_exports, kit_step]) > 1:
        raise ConfigError("--calibrate, --add-exports and --kit / --import are separate steps; run one at a time")
    if args.import_csv is not None:
        _import_kit(args)
        return
    if args.kit is not None:
        _write_kit(args)
        return
    if args.add_exports:
        for path, calibration, used in add_exports_and_save(args.device, args.results_dir).values():
            print(f"wrote {path} with {used} exports: {_calibration_line(calibration)}")
        return
    if args.calibrate:
        path, calibration = calibrate_from_csv(args.device, Path(args.calibrate), kernel_set=args.kernel_set)
        print(f"wrote {path}: {_calibration_line(calibration)}")
        return
    if args.device == "host":
        require_quiet_machine("profiling", under_load=args.under_load)
    if args.calibrate is not None:
        for path, calibration in calibrate_and_save(args.device, show_progress=not args.no_progress).values():
            print(f"wrote {path}: {_calibration_line(calibration)}")
        return
    if args.if_cpu_differs and args.device == "host":
        reason = host_tables_current()
        if reason is None:
            print("host tables were measured on this CPU: nothing to do")
            return
        print(f"profiling this host: {reason}", file=sys.stderr)
    written = profile_and_save(args.device, quick=args.quick, show_progress=not args.no_progress)
    for path, table in written:
        print(f"wrote {path} ({len(table.entries)} entries, noise floor {table.provenance['noise_floor_pct']}%)")


def _write_kit(args: argparse.Namespace) -> None:
    from nas.profiling.kit import write_kit
    from nas.profiling.run import QUICK_GRID

    summary = write_kit(
        args.device, args.kit, grid=QUICK_GRID if args.quick else None, show_progress=not args.no_progress
    )
    print(
        f"wrote {summary.directory}: {summary.micro_models} micro-models and {summary.reference_models} reference "
        f"models ({summary.bytes / 1e6:.1f} MB); on the device: python3 run_kit.py, then "
        f"`nas profile --device {args.device} --import results.csv --kit {summary.directory}` "
        "(README.md in the kit has the TFLite Micro harness for microcontrollers)"
    )


def _import_kit(args: argparse.Namespace) -> None:
    from nas.profiling.kit_import import import_kit_results

    for item in import_kit_results(args.device, args.import_csv, kit=args.kit):
        noise = item.table.provenance.get("noise_floor_pct")
        print(
            f"wrote {item.path} ({len(item.table.entries)} entries, measured on the device, noise floor {noise}%): "
            f"{_calibration_line(item.calibration)}"
        )


def _calibration_line(calibration: Calibration) -> str:
    error = calibration.fit_error()
    return (
        f"{calibration.describe()}; {len(calibration.points)} reference models "
        f"({error['within_10pct']:.0%} within +-10% after calibration, MAPE {error['mape']:.1%})"
    )


def _run_estimate(args: argparse.Namespace) -> None:
    from latency_models.device import available_devices
    from nas.analysis.estimate import (
        Estimate,
        estimate_across,
        estimate_file,
        estimate_spec,
        estimate_trial,
        format_across,
        format_estimate,
    )
    from nas.paths import StudyPaths

    def estimator(device: str | None) -> Estimate:
        kernels = args.kernel_set if device == args.device else None  # a kernel set names one device's
        if args.file is not None:
            return estimate_file(args.file, device or "host", kernels)
        if args.study is not None:
            if args.trial is None:
                raise ConfigError("--study needs --trial N")
            storage = args.storage or StudyPaths(args.results_dir, args.study).default_storage
            return estimate_trial(args.study, args.trial, storage, device, kernels)
        return estimate_spec(args.model, args.dataset, args.precision, device or "host", kernels)

    if args.device is not None and (args.device == "all" or "," in args.device):
        devices = available_devices() if args.device == "all" else [d.strip() for d in args.device.split(",")]
        print(format_across(estimate_across(estimator, devices)))
        return
    print(format_estimate(estimator(args.device)))


def _run_train(args: argparse.Namespace) -> None:
    from nas.progress import epoch_progress
    from nas.search.context import build_context, resolve_problem

    problem = resolve_problem(_config(args), data_dir=args.data_dir)
    context = build_context(problem, results_dir=args.results_dir, progress=epoch_progress())
    source = "cached" if context.baseline.from_cache else "trained"
    print(
        f"baseline {source}: val accuracy {context.baseline.val_accuracy:.4f}, "
        f"test accuracy {context.baseline.test_accuracy:.4f} ({context.baseline.cache_dir})"
    )


def _run_search(args: argparse.Namespace) -> None:
    from nas.analysis.pareto import front_frame, trials_frame
    from nas.paths import check_study_name
    from nas.search.context import resolve_problem
    from nas.search.study import run_search

    check_study_name(args.study)
    problem = resolve_problem(_config(args), data_dir=args.data_dir)
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
    print(_front_table(front, objectives))
    failed = [t for t in summary.study.trials if "fail_reason" in t.user_attrs]
    if failed:
        print(
            f"{len(failed)} trials failed and were skipped (trial {failed[-1].number}: "
            f"{failed[-1].user_attrs['fail_reason']}); the reason of each is its fail_reason attribute",
            file=sys.stderr,
        )
    print(f"next: nas pareto --study {args.study}  and  nas plot --study {args.study}")


def _note_stale_host_tables(config) -> None:
    """One line on stderr when host latency comes from tables measured on another CPU."""
    from latency_models.registry import host_tables_current

    if config.device == "host" and config.uses_device:
        reason = host_tables_current()
        if reason is not None:
            print(
                f"note: host latency is predicted from tables that may not fit this machine: {reason}; "
                "`nas profile --device host` measures it here",
                file=sys.stderr,
            )


def _front_table(front, objectives: tuple[str, ...]) -> str:
    """The front in display units: objectives first, then the other device figures the trials recorded."""
    from nas.objectives import DEVICE_TERMS, term

    extra = [n for n in ("stored_bytes", *DEVICE_TERMS) if n not in objectives and front.get(n) is not None]
    names = [n for n in (*objectives, *extra) if n in front.columns and front[n].notna().any()]
    shown = front[["number", *(["test_accuracy"] if "test_accuracy" in front.columns else []), *names]].copy()
    renamed = {}
    for name in names:
        figure = term(name)
        if name != "accuracy":
            shown[name] = shown[name] * figure.scale
            provenance = front.get(f"{name}_provenance")
            kind = "" if provenance is None else f", {'/'.join(sorted(set(provenance.dropna().astype(str))))}"
            renamed[name] = f"{name.rsplit('_', 1)[0]} ({figure.unit}{kind})"
    if "worst_class_drop" in front.columns:  # the per-class audit on the test split
        pairs = zip(front["worst_class"], front["worst_class_drop"], strict=True)
        shown["worst class (change)"] = [f"{label} ({-drop:+.1%})" for label, drop in pairs]
        shown["flagged"] = front["flagged_classes"].fillna("").replace("", "-")
    if "robust_accuracy" in front.columns:  # mean accuracy on degraded test inputs (robustness.json)
        shown["degraded acc"] = front["robust_accuracy"]
    return shown.rename(columns=renamed).to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _run_pareto(args: argparse.Namespace) -> None:
    from nas.analysis.report import pareto_report, rescored_report

    if args.device is not None:
        rescored = rescored_report(
            args.study, args.device, kernel_set=args.kernel_set, results_dir=args.results_dir, storage=args.storage
        )
        result = rescored.rescored
        feasible = int((result.trials["feasible"] == True).sum())  # noqa: E712
        print(f"study {args.study} re-scored for {result.latency_source}")
        print(f"{feasible} of {len(result.trials)} trials feasible there; front of {len(result.front)}:")
        print(_front_table(result.front, result.objectives) if not result.front.empty else "no feasible trial there")
        print(f"wrote {rescored.trials_csv} and {rescored.front_csv}")
        if rescored.note:
            print(f"note: {rescored.note}", file=sys.stderr)
        return
    report = pareto_report(args.study, results_dir=args.results_dir, storage=args.storage)
    print(_front_table(report.front, report.objectives) if not report.front.empty else "no feasible trial yet")
    print(f"wrote {report.trials_csv} ({len(report.trials)} trials) and {report.front_csv}")
    if report.note:
        print(f"note: {report.note}", file=sys.stderr)


def _run_plot(args: argparse.Namespace) -> None:
    from nas.analysis.report import plot_report

    for path in plot_report(args.study, results_dir=args.results_dir, storage=args.storage):
        print(f"wrote {path}")
    if args.devices:
        from latency_models.device import available_devices
        from nas.analysis.report import device_fronts_plot

        devices = available_devices() if args.devices == "all" else [d.strip() for d in args.devices.split(",")]
        path = device_fronts_plot(args.study, devices, results_dir=args.results_dir, storage=args.storage)
        print(f"wrote {path}")


def _run_analyze(args: argparse.Namespace) -> None:
    from nas.analysis.diagnostics import diagnose, draw_moves, moves_frame
    from nas.analysis.pareto import write_csv
    from nas.search.context import build_context, resolve_problem

    problem = resolve_problem(_config(args), data_dir=args.data_dir)
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


def _run_report(args: argparse.Namespace) -> None:
    from nas.deploy.study_report import write_report

    html_path, markdown_path = write_report(args.study, results_dir=args.results_dir, storage=args.storage)
    print(f"wrote {html_path} (self-contained) and {markdown_path}")


def _run_baselines(args: argparse.Namespace) -> None:
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


def _run_compare(args: argparse.Namespace) -> int:
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


def _run_select(args: argparse.Namespace) -> int:
    from nas.analysis.selection import ServiceLevel, Shortfall
    from nas.deploy.release import releases_dir, rollback
    from nas.deploy.select import select_and_accept
    from nas.paths import StudyPaths

    root = releases_dir(StudyPaths(args.results_dir, args.study).root)
    if args.rollback:
        version = rollback(root)
        print(f"v{version} is current again ({root / f'v{version}'}); the later versions stay on disk")
        return 0
    level = ServiceLevel(limits=_budgets(args, ()), min_accuracy=args.min_accuracy)
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


def _status(check: dict) -> str:
    if check["passed"]:
        return "ok"
    return "accuracy not judged" if check["bar"] is None else "FAILED"


def _print_checks(label: str, record: dict) -> None:
    for check in record["kernels"]:
        agreement = "n/a" if check["agreement"] is None else f"{check['agreement']:.4f}"
        if check["agreement"] is None and check["kernel_agreement"] is not None:
            agreement = f"{check['kernel_agreement']:.4f} with xnnpack"
        latency = check["latency"]
        print(
            f"{label} [{check['delegate']:7s}] accuracy {check['accuracy']:.4f} agreement {agreement} "
            f"latency p50/p90/p99 {latency['p50_ms']:.3f}/{latency['p90_ms']:.3f}/{latency['p99_ms']:.3f} ms "
            f"{_status(check)}"
        )
    memory = record["runtime_memory"]
    print(
        f"{label} runtime tensor memory {memory['runtime_bytes']} B "
        f"(largest tensor {memory['largest_tensor_bytes']} B; measured, builtin kernels)"
    )


def _print_device_figures(label: str, device: dict | None) -> None:
    """The study device's own figures with provenance, and the margin under its memory limits."""
    if device is None:
        return
    figures = device["figures"]
    parts = [
        f"latency {figures['latency_ms']['value'] * 1000:.3g} us ({figures['latency_ms']['provenance']})",
        f"energy {figures['energy_mj']['value']:.3g} mJ ({figures['energy_mj']['provenance']})",
    ]
    for name, title in (("ram_bytes", "RAM"), ("flash_bytes", "flash")):
        figure = figures[name]
        limit = f" of {figure['limit']} B, margin {figure['margin_pct']:g}%" if "limit" in figure else ""
        parts.append(f"{title} {figure['value']:.0f} B{limit} ({figure['provenance']})")
    print(f"{label} on {device['device']}: " + ", ".join(parts))


def _print_cost_check(label: str, check: dict) -> None:
    if "skipped" in check:
        print(f"{label} predicted vs measured: skipped ({check['skipped']})")
        return
    for kernels, figures in check["latency"].items():
        print(
            f"{label} [{kernels:7s}] latency predicted {figures['predicted_ms'] * 1000:.2f} us "
            f"({figures['provenance']}) vs measured {figures['measured_ms'] * 1000:.2f} us: "
            f"{figures['error_pct']:+.1f}%"
        )
    ram, flash = check["ram_bytes"], check["flash_bytes"]
    print(
        f"{label} RAM predicted {ram['predicted']} B vs measured {ram['measured']} B; "
        f"flash predicted {flash['predicted']} B vs file {flash['measured']} B"
    )


def _run_export(args: argparse.Namespace) -> int:
    from nas.deploy.study_export import export_trials

    records = export_trials(
        args.study,
        None if args.pareto or args.knee else args.trial,
        results_dir=args.results_dir,
        storage=args.storage,
        threads=args.threads,
        knee=args.knee,
        under_load=args.under_load,
    )
    for record in records:
        print(
            f"trial {record['trial']}: {record['model']} ({record['file_bytes']} B, gzip {record['gzip_bytes']} B), "
            f"JAX test accuracy {record['jax_test_accuracy']:.4f}"
        )
        if record.get("quality_warning"):
            print(f"  warning: trial {record['trial']}: {record['quality_warning']}")
        _print_device_figures(f"  trial {record['trial']}", record.get("device_figures"))
        _print_checks(f"  trial {record['trial']} this host:", record)
        _print_cost_check(f"  trial {record['trial']} this host:", record["cost_check"])
        if not record["passed"]:
            print(f"  first divergent layer: {record.get('first_divergent_layer')}")
    failed = [r["trial"] for r in records if not r["passed"]]
    if failed:
        print(f"nas export: error: verification failed for trials {failed} (see verification.json)", file=sys.stderr)
        return 1
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from nas.deploy.study_export import verify_file

    record = verify_file(
        args.model,
        dataset_source=args.dataset,
        threads=args.threads,
        min_accuracy=args.min_accuracy,
        under_load=args.under_load,
    )
    _print_checks(str(args.model), record)
    for item in record["not_checked"]:
        print(f"{args.model} not checked: {item}")
    if record["accuracy_judged_against"] is None:
        print(
            f"nas verify: error: {args.model} is not verified: nothing to judge its accuracy against "
            "(pass --min-accuracy)",
            file=sys.stderr,
        )
        return 1
    if not record["passed"]:
        print(f"nas verify: error: {args.model} fails against {record['accuracy_judged_against']}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nas``; returns the exit code (2 for bad input, with a one-line message)."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if args.verbose else optuna.logging.WARNING)
    try:
        code = args.run(args)
    except USER_ERRORS as err:
        print(f"nas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"nas {args.command}: interrupted; finished trials are saved, rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
