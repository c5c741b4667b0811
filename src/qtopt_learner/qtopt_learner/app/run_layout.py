"""Every path of a main-job run folder, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qtopt_learner.learner_layout import LearnerLayout


@dataclass(frozen=True)
class RunLayout:
    """A main-job run folder: its record and config, the cells' episodes and logs, the
    learner's folder, the report and its figures."""

    root: Path

    @property
    def record(self) -> Path:
        """The finished phases and their results (:class:`~.run_record.RunRecord`)."""
        return self.root / "state.json"

    @property
    def config(self) -> Path:
        """The run's :class:`~.main_job_config.MainJobConfig`: ``qtopt run --config`` takes it."""
        return self.root / "config.yaml"

    @property
    def evaluation_attempts(self) -> Path:
        """Every finished evaluation attempt, appended as it finishes
        (:class:`~qtopt_collector.evaluation.AttemptLog`): an interrupted evaluation continues
        from them."""
        return self.root / "evaluation_attempts.jsonl"

    @property
    def episodes(self) -> Path:
        """The cells' rosbag2 episodes, live and replayed on a resume."""
        return self.root / "episodes"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def learner(self) -> LearnerLayout:
        return LearnerLayout(self.root / "learner")

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def learning_curves(self) -> Path:
        return self.figures / "learning_curves.png"

    @property
    def filmstrips(self) -> Path:
        return self.figures / "filmstrips.png"
