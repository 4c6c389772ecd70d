"""Plan the default scenario, print the headline numbers, and write the offline HTML report.

Run: python docs/examples/plan_and_report.py [OUTPUT_DIR]
The printed output is checked by tests/interfaces/report/test_examples.py against plan_and_report.out.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import fivelayer
from fivelayer.engines.analytic import plan
from fivelayer.interfaces.report import stack_charts, write_report


def main(out_dir: Path) -> None:
    scenario = fivelayer.default_scenario()
    result = plan(scenario)
    totals = result.totals
    print(f"scenario: {scenario.name}")
    print(f"deployments: {', '.join(d['name'] + ' on ' + d['accelerator'] for d in result.deployments)}")
    print(f"facility power within the cap: {totals['facility_power_mw'] <= 100.0}")
    print(f"charts: {', '.join(c.title for c in stack_charts(result))}")
    path = write_report(out_dir / "report.html", scenario, result)
    print(f"report written: {path.name}, no external scripts: {'<script src=' not in path.read_text(encoding='utf-8')}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
