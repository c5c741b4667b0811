"""Log replay (Kalashnikov et al. 2018, App. F.2): stream recorded episodes from rosbag2 bags
into the "offline" buffer.

The unit of work is one MCAP file (the recorder writes one episode per file), so files from
many bags are shuffled together and split over several readers, which decorrelates what enters
the FIFO. A file that cannot be read, or a malformed episode in one, is reported once (one
line) and skipped; the good files and episodes are read and the run goes on. Readers loop
over their files continuously while the buffer evicts (older episodes come back as the FIFO
forgets them); while everything read is still resident they wait instead of re-reading.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

from qtopt_collector.bag_files import episode_files as episode_files  # re-exported
from qtopt_collector.bag_recorder import EpisodeFileError
from qtopt_collector.bag_recorder import read_episode_file as read_episode_file  # re-exported
from qtopt_learner.distributed.roles import OFFLINE, ReplayService, StopSignal
from qtopt_learner.learner_config import LogReplayConfig
from qtopt_policy.episode_record import EpisodeRecord

log = logging.getLogger(__name__)
RESIDENT_POLL_S = 0.5


def split_files(files: list[Path], readers: int, seed: int) -> list[list[Path]]:
    """Shuffle ``files`` and deal them round-robin to ``readers`` readers."""
    shuffled = list(files)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[i::readers] for i in range(readers)]


def run_log_reader(files: list[Path], replay: ReplayService, stop: StopSignal,
                   config: LogReplayConfig = LogReplayConfig(), index: int = 0,
                   loop: bool = True) -> dict[str, int]:
    """Feed ``files`` into the offline buffer until ``stop``; returns counts."""
    rng = random.Random(config.seed * 1000 + index)
    counts = {"episodes": 0, "transitions": 0, "bad_files": 0, "bad_episodes": 0, "passes": 0}
    bad: set[Path] = set()
    reported: set[Path] = set()  # files with a malformed episode: logged on the first pass only
    order = list(files)
    while not stop.stopped():
        rng.shuffle(order)
        chunk: list[EpisodeRecord] = []
        for path in order:
            if stop.stopped():
                break
            if path in bad:
                continue
            errors: list[str] = []
            try:
                episodes = read_episode_file(path, on_error=errors.append)
            except EpisodeFileError as err:
                log.error("%s; skipped", err)
                bad.add(path)
                counts["bad_files"] += 1
                continue
            if errors and path not in reported:
                reported.add(path)
                counts["bad_episodes"] += len(errors)
                for error in errors:
                    log.error("%s; skipped", error)
            chunk.extend(episodes)
            if len(chunk) >= config.chunk_episodes:
                _flush(replay, chunk, counts)
        _flush(replay, chunk, counts)
        counts["passes"] += 1
        if not loop or len(bad) == len(order):
            break
        while _all_resident(replay) and not stop.stopped():  # re-reading would only duplicate
            time.sleep(RESIDENT_POLL_S)
    return counts


def _all_resident(replay: ReplayService) -> bool:
    offline = replay.replay_stats().offline
    return offline.transitions == offline.transitions_added


def _flush(replay: ReplayService, chunk: list[EpisodeRecord], counts: dict[str, int]) -> None:
    if chunk:
        replay.add_episodes(OFFLINE, chunk)
        counts["episodes"] += len(chunk)
        counts["transitions"] += sum(len(e.steps) for e in chunk)
        chunk.clear()
