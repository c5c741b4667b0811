"""How fast ``qtopt`` answers ``--help`` and refuses a new user's bad input (issue 17): each
command line runs as its own process, as a user would run it, and the table gives the median
wall time over ``--repeats`` runs, the exit status and the error line. The issue asks for
``--help`` under 1 s and each error under 2 s.

    .venv/bin/python bench/bench_cli_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QTOPT = Path(sys.executable).with_name("qtopt")
# (command line after ``qtopt``, the most seconds it may take)
CASES = (
    ("--help", 1.0),
    ("run --help", 1.0),
    ("cell --help", 1.0),
    ("cell --sim --policy greedy --model corrupt.pt", 2.0),
    ("cell --episodes -3", 2.0),
    ("cell --cells 0", 2.0),
    ("train --help", 1.0),
    ("train --offline_paths data --steps -5", 2.0),
    ("train --offline_paths /nonexistent", 2.0),
    ("sim --model corrupt.pt --run-dir runs/x", 2.0),
)


def time_command(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, exit status and the last stderr line (or the first stdout line)."""
    started = time.monotonic()
    out = subprocess.run([str(QTOPT), *args], cwd=cwd, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "100"})
    elapsed = time.monotonic() - started
    lines = (out.stderr or out.stdout).strip().splitlines()
    return elapsed, out.returncode, lines[-1] if out.stderr else (lines or [""])[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command line")
    args = parser.parse_args()
    slow = 0
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "corrupt.pt").write_bytes(os.urandom(4096))
        (cwd / "data").mkdir()
        print(f"{'qtopt ...':48} {'median s':>8} {'limit':>5} {'exit':>4}  output")
        for line, limit in CASES:
            runs = [time_command(line.split(), cwd) for _ in range(args.repeats)]
            median = statistics.median(r[0] for r in runs)
            _, status, text = runs[-1]
            slow += median > limit
            flag = "" if median <= limit else "  << over the limit"
            print(f"{line:48} {median:8.2f} {limit:5.1f} {status:4d}  {text[:90]}{flag}")
        created = sorted(p.name for p in cwd.iterdir()) != ["corrupt.pt", "data"]
        print("\nfiles or folders the failing commands created:", "some" if created else "none")
    return 1 if slow or created else 0


if __name__ == "__main__":
    sys.exit(main())
