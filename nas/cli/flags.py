"""Flag types and the flag groups several commands share, and the one translation of flags into a search config."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from nas.objectives import OBJECTIVE_TERMS


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def learning_rate(text: str) -> float | None:
    """argparse type: a positive learning rate, or None for ``auto``."""
    return None if text == "auto" else positive_float(text)


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def results_dir_flag(parser: argparse.ArgumentParser) -> None:
    """``--results-dir``: where studies and cached baselines live."""
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="where studies and cached baselines live (default: results)",
    )


def study_flags(parser: argparse.ArgumentParser) -> None:
    """``--study`` (required), ``--storage`` and ``--results-dir``: which saved study a command reads."""
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's sqlite file)")
    results_dir_flag(parser)


def device_flags(parser: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    """``--device`` and ``--kernel-set`` (the device's first kernel set unless named)."""
    parser.add_argument("--device", default=default, help=help)
    parser.add_argument("--kernel-set", default=None, help="kernel set of --device (default: its first)")


def under_load_flag(parser: argparse.ArgumentParser) -> None:
    """``--under-load``: time the host although searches run on this machine."""
    parser.add_argument(
        "--under-load",
        action="store_true",
        help="time the host even while searches run on this machine (their load makes the timings wrong)",
    )


def threads_flag(parser: argparse.ArgumentParser) -> None:
    """``--threads``: interpreter threads for the checks and timings."""
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads for latency (default 1)")


def problem_flags(parser: argparse.ArgumentParser) -> None:
    """The model, its data and its baseline training: what ``train``, ``search`` and ``analyze`` work on."""
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
        "--width", type=positive_float, default=None, help="width multiplier override for the model (0 < w <= 4)"
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
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for training and sampling")
    parser.add_argument("--epochs", type=positive_int, default=60, help="baseline training epochs (default: 60)")
    parser.add_argument(
        "--train-lr",
        type=positive_float,
        default=None,
        help="baseline training learning rate (default: the family's declared rate, else 3e-3)",
    )
    results_dir_flag(parser)


def budget_flags() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each budget flag with its unit and the terms it can bound (in registry order)."""
    flags: dict[str, tuple[str, tuple[str, ...]]] = {}
    for term in OBJECTIVE_TERMS.values():
        if term.budget_flag:
            unit, names = flags.get(term.budget_flag, (term.budget_unit or term.unit, ()))
            flags[term.budget_flag] = (unit, (*names, term.name))
    return flags


def add_budget_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """One flag per budgeted term (``--max-latency-ms`` ...); ``what`` says what the value is (budget, limit)."""
    for flag, (unit, applies_to) in budget_flags().items():
        parser.add_argument(flag, type=float, default=None, help=f"{what} in {unit} on {' or '.join(applies_to)}")


def budgets(args: argparse.Namespace, objectives: tuple[str, ...]) -> dict[str, float]:
    """Budget flags as limits in raw units, each on the first objective it can bound (else its first term)."""
    from nas.objectives import term

    limits = {}
    for flag, (_, names) in budget_flags().items():
        shown = getattr(args, flag.removeprefix("--").replace("-", "_"), None)
        if shown is None:
            continue
        name = next((o for o in objectives if o in names), names[0])
        limits[name] = term(name).to_raw(shown) if shown > 0 else shown
    return limits


def search_config(args: argparse.Namespace):
    """The ``SearchConfig`` the flags describe, built by the API's own builder (``nas.api.search_config``)."""
    from nas.api import search_config as build
    from nas.config import DEFAULT_SAMPLER

    objectives = tuple(name.strip() for name in getattr(args, "objectives", "accuracy,latency_ms").split(","))
    model, weights = _model_reference(args)
    space = getattr(args, "space", None)
    return build(
        model=model,
        weights=weights,
        width_multiplier=args.width,
        dataset=args.dataset,
        space=space,
        objectives=objectives,
        budgets=budgets(args, objectives),
        device=getattr(args, "device", "host"),
        kernel_set=getattr(args, "kernel_set", None),
        search_sparsity=getattr(args, "search_sparsity", None),
        channel_norm=getattr(args, "channel_norm", "l2"),
        snap_channels=getattr(args, "snap_channels", True),
        sampler=getattr(args, "sampler", None) or DEFAULT_SAMPLER,
        seed=args.seed,
        epochs=args.epochs,
        train_lr=getattr(args, "train_lr", None),
        finetune_steps=getattr(args, "steps", None),
        finetune_lr=getattr(args, "finetune_lr", None),
        finetune_targets=getattr(args, "finetune_targets", None),
        verify_trials=getattr(args, "verify_trials", True),
        host_latency=getattr(args, "host_latency", "auto"),
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
