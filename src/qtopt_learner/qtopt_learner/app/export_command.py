"""``qtopt export``: recorded episodes (rosbag2 bags) in another ecosystem's dataset format.

``--format lerobot`` writes a LeRobot dataset (codebase version v3.0) that
``LeRobotDataset(repo_id, root=OUT)`` loads (:mod:`qtopt_learner.lerobot_export`). The parser
imports nothing heavy, and BAGS and OUT are checked before any episode is read
(:mod:`qtopt_learner.app.cli`).
"""

from __future__ import annotations

import argparse

from qtopt_learner.app.input_checks import check_offline
from qtopt_policy.usage import UsageError

FORMATS = ("lerobot",)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="dataset format: lerobot (LeRobot v3.0, parquet with PNG frames)")
    parser.add_argument("bags", nargs="+", metavar="BAGS",
                        help="rosbag2 bags or folders of bags, as recorded by the cells")
    parser.add_argument("out", metavar="OUT", help="folder of the dataset: new or empty")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the dataset already in OUT")


def run_export_command(args: argparse.Namespace) -> int:
    check_offline(args.bags, flag="BAGS")
    from qtopt_learner.lerobot_export import (
        CODEBASE_VERSION,
        FPS,
        ExportError,
        check_out,
        export_lerobot,
    )

    try:
        check_out(args.out, args.overwrite)
    except ExportError as err:
        raise UsageError(f"OUT {args.out}: {err}") from None
    try:
        result = export_lerobot(args.bags, args.out, overwrite=args.overwrite)
    except ExportError as err:
        raise UsageError(f"BAGS {' '.join(args.bags)}: {err}") from None
    skipped = (f"; {result.skipped} damaged files or malformed episodes skipped (logged above)"
               if result.skipped else "")
    print(f"[qtopt] {result.episodes} episodes ({result.frames} frames) from {result.files} "
          f"episode files -> LeRobot {CODEBASE_VERSION} dataset {args.out} (fps {FPS})"
          f"{skipped}")
    return 0
