"""The flags several ``qtopt`` commands share, each added by one function with one help text, so
a flag means the same in every command that takes it. Light, like the rest of the parsers
(:mod:`qtopt_policy.usage`)."""

from __future__ import annotations

import argparse

from qtopt_policy.names import PRESET_NAMES, SEEDS_PER_RUN
from qtopt_policy.usage import config_field_type


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="sim", choices=PRESET_NAMES,
                        help="Q-network and trainer preset (paper: 472 px, wants a GPU)")


def add_seed_argument(parser: argparse.ArgumentParser, config: str) -> None:
    """``--seed``, which sets the field ``seed`` of ``config`` (``"module:Class"``)."""
    parser.add_argument("--seed", type=config_field_type(config, "seed"), default=0,
                        help="the run's seed: of its networks and random draws; the episodes "
                        f"of seed k take seeds k * {SEEDS_PER_RUN} + 1, + 2, ...")


def add_offline_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", nargs="*", default=[], metavar="PATH",
                        help="rosbag2 bags or folders of bags to replay (log replay, App. F.2)")


def add_run_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True,
                        help="run folder (checkpoints, models, logs); an existing one resumes "
                        "where it stopped")
