"""`nas report`: the whole study as one self-contained HTML page and a Markdown file."""

from __future__ import annotations

import argparse

from nas.cli import flags

ORDER = 130
NAME = "report"
HELP = "write results/<study>/report.html (self-contained) and report.md: the whole study"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's flags."""
    flags.study_flags(parser)


def run(args: argparse.Namespace) -> None:
    """Runs `nas report`."""
    from nas.deploy.study_report import write_report

    html_path, markdown_path = write_report(args.study, results_dir=args.results_dir, storage=args.storage)
    print(f"wrote {html_path} (self-contained) and {markdown_path}")
