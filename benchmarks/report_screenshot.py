"""A screenshot of a study report as a person sees it: ``nas report`` on an existing study, rendered in headless
Chromium (Debian's package, installed when absent), kept as results/benchmarks/report_screenshot.png.

Usage: python benchmarks/report_screenshot.py --study quickstart [--results-dir results]
(run `bash scripts/quickstart.sh`, `nas baselines --study quickstart` and `nas analyze` first for every section).
Writes results/benchmarks/report_screenshot.png and report_screenshot.json (the ink share of the page).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nas.deploy.study_report import write_report
from nas.provenance import run_provenance

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "benchmarks"
sys.path.insert(0, str(ROOT))  # the tests' browser helper, which installs Debian's chromium when absent
from tests.browser import screenshot  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="quickstart")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    page, _ = write_report(args.study, results_dir=args.results_dir)
    image = screenshot(page, OUT / "report_screenshot.png", size=(1200, 5200))
    ink = float((image[..., :3].mean(axis=-1) < 0.9).mean())
    record = {"study": args.study, "page_bytes": page.stat().st_size, "ink_share": round(ink, 4), **run_provenance()}
    (OUT / "report_screenshot.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT / 'report_screenshot.png'} (ink share {ink:.1%})")


if __name__ == "__main__":
    main()
