"""`nas models`: the built-in model families."""

from __future__ import annotations

import argparse

ORDER = 10
NAME = "models"
HELP = "list the built-in model families"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    del parser  # no flags


def run(args: argparse.Namespace) -> None:
    """Runs `nas models`."""
    from search_spaces.spec import available_models, load_model_spec

    for name in available_models():
        spec = load_model_spec(name)
        layers = sum(node.is_compressible for node in spec.nodes)
        print(f"{name:14s} {layers:3d} compressible layers  {spec.description}")
