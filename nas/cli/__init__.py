"""The ``nas`` command line. Intentionally thin: it parses flags into a config and calls the library.

One module per command in this package, each with its ``NAME``, ``HELP``, ``ORDER`` (its place in ``nas
--help``), ``add_arguments(parser)`` and ``run(args)``; the parser finds them, so a new command is one new file.
Shared flag groups and the one flags-to-config translation are in ``flags``, shared printing in ``output``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from types import ModuleType

from latency_models.console import VERBOSE_ENV
from nas.compile_cache import enable_compilation_cache
from nas.errors import USER_ERRORS

DESCRIPTION = "Hardware-aware compression search (per-layer sparsity x mixed precision) for JAX/Flax models."
HELPERS = {"flags", "output"}  # modules of this package that are not commands


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) that point at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def commands() -> list[ModuleType]:
    """The command modules of this package, in ``nas --help`` order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in HELPERS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for attribute in ("NAME", "HELP", "ORDER", "add_arguments", "run"):
            if not hasattr(module, attribute):
                raise TypeError(f"command module {module.__name__} has no {attribute}")
        found.append(module)
    return sorted(found, key=lambda module: module.ORDER)


def build_parser() -> argparse.ArgumentParser:
    """The full ``nas`` parser with a subcommand per command module."""
    parser = _Parser(prog="nas", description=DESCRIPTION)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show what third-party libraries print (native start-up logs, progress bars, Optuna's log)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in commands():
        command = sub.add_parser(module.NAME, help=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nas``; returns the exit code (2 for bad input, with a one-line message)."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if args.verbose else optuna.logging.WARNING)
    enable_compilation_cache()
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
