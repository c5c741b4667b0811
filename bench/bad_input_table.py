#!/usr/bin/env python3
"""The bad-input table of issue 17 as counts per group: inputs tried, those that got one clear
error line (the right error type, naming the value and what was expected), and, where data or a
running consumer is involved, those that lost nothing. It runs the very cases of
``test/test_bad_inputs.py`` (their table is ``test/bad_inputs.py``); the command line's own
table (``src/qtopt_learner/test/test_cli_errors.py``) is counted beside them. Usage:

    .venv/bin/python bench/bad_input_table.py [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from module_loading import load_module

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case's error line")
    args = parser.parse_args()
    table = load_module("bad_inputs", ROOT / "test" / "bad_inputs.py")
    cli = load_module("cli_errors", ROOT / "src" / "qtopt_learner" / "test" / "test_cli_errors.py")
    bench = table.Bench(Path(tempfile.mkdtemp(prefix="qtopt_bad_inputs_")))
    outcomes = []
    try:
        for case in table.CASES:
            outcome = table.run(bench, case)
            outcomes.append(outcome)
            if args.verbose or outcome.problems():
                print(f"[{case.group}] {case.name}: {outcome.message}  "
                      f"{'; '.join(outcome.problems())}")
    finally:
        bench.close()
    rows = table.counts(outcomes)
    print(f"\n{'group':<24}{'tried':>7}{'clear error':>13}{'nothing lost':>15}")
    total = dict.fromkeys(("tried", "clear", "applies", "kept"), 0)
    for group, row in rows.items():
        kept = f"{row['kept']}/{row['applies']}" if row["applies"] else "n/a"
        print(f"{group:<24}{row['tried']:>7}{row['clear']:>13}{kept:>15}")
        total = {k: total[k] + row[k] for k in total}
    print(f"{'all':<24}{total['tried']:>7}{total['clear']:>13}"
          f"{total['kept']:>11}/{total['applies']}")
    # tested there as one qtopt: error line, exit 2, nothing created (not rerun here)
    print(f"{'CLI (test_cli_errors)':<24}{len(cli.BAD_INPUTS):>7}{'(by reference)':>28}")
    return 0 if all(not o.problems() for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
