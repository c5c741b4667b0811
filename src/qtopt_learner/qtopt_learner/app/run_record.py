"""The typed record of a main-job run: each finished phase and its results, saved as the run
folder's ``state.json`` after every phase so that a rerun skips what is done, and read by the
report."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qtopt_collector.evaluation import BinEmptyingResult, EvalResult
from qtopt_learner.probes import OutcomeAUC, StopValueProbe

# Phases of the job this one replaced: a folder holding them is not this job's.
OLD_PHASES = {"bootstrap", "off_policy", "on_policy"}


@dataclass(frozen=True)
class CollectedEpisode:
    """What the report's collection curve needs of a recorded episode."""

    policy: str
    success: bool
    model_version: int


@dataclass(frozen=True)
class TrainRecord:
    """Phase 1, collect while training (App. C, F.1)."""

    episodes: int
    step: int  # the final export's training step
    model: str  # the final export, kept under the learner's models/
    chosen: dict[str, int]  # episodes sent per collecting policy by the run that ended the phase
    collection: tuple[CollectedEpisode, ...]  # every recorded episode, in seed order
    seconds: float  # of the run that ended the phase
    resumed_with: int = 0  # episodes recorded before that run (0: the phase ran whole)


@dataclass(frozen=True)
class PolicyRecord:
    """One policy under both protocols of Sec. 6.1."""

    model: str  # a local policy's name or a model path
    grasps: EvalResult
    bin: dict[str, float]  # "first_10" ... -> success rate over the first n attempts
    bin_outcomes: tuple[tuple[bool, ...], ...]

    @property
    def interval(self) -> tuple[float, float]:
        return self.grasps.interval

    @classmethod
    def of(cls, grasps: EvalResult, bins: BinEmptyingResult | None) -> PolicyRecord:
        """A policy's grasps with replacement and its emptied bins (None: none emptied)."""
        if bins is None:
            return cls(model=grasps.policy, grasps=grasps, bin={}, bin_outcomes=())
        return cls(model=grasps.policy, grasps=grasps,
                   bin={f"first_{n}": bins.rate_first(n) for n in bins.checkpoints},
                   bin_outcomes=bins.outcomes)


@dataclass(frozen=True)
class CurvePoint:
    """An intermediate export on the learning curve."""

    step: int
    grasps: EvalResult


@dataclass(frozen=True)
class EvaluationRecord:
    """Phase 2, held-out test objects: the policy table, the learning curve, the probe."""

    policies: dict[str, PolicyRecord]
    curve: tuple[CurvePoint, ...]
    stop_probe: StopValueProbe
    seconds: float
    # Q of the scripted episodes' closes against their grasps' truth (None: a record from
    # before the probe)
    close_probe: OutcomeAUC | None = None


@dataclass
class RunRecord:
    """The phases a run has finished (None: still to run)."""

    train: TrainRecord | None = None
    evaluation: EvaluationRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other versions, kept as is

    def timings(self) -> dict[str, float]:
        return {name: phase.seconds for name, phase in (("train", self.train),
                                                          ("evaluation", self.evaluation))
                if phase is not None}

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """The record in ``path``, or an empty one when there is none yet."""
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        if OLD_PHASES & set(data):
            raise ValueError(f"run folder {path.parent}: made by the earlier bootstrap/"
                             "off-policy/fine-tuning job; expected a new run folder for the "
                             "collect-while-train job")
        train, evaluation = data.pop("train", None), data.pop("evaluation", None)
        return cls(train=None if train is None else _train_from_json(train),
                   evaluation=None if evaluation is None else _evaluation_from_json(evaluation),
                   extra=data)

    def save(self, path: Path) -> None:
        """Write atomically: a killed job leaves the previous record or this one."""
        data = dict(self.extra)
        if self.train is not None:
            data["train"] = dataclasses.asdict(self.train)
        if self.evaluation is not None:
            data["evaluation"] = _evaluation_to_json(self.evaluation)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)


def _train_from_json(data: dict) -> TrainRecord:
    return TrainRecord(
        episodes=data["episodes"], step=data["step"], model=data["model"],
        chosen=dict(data["chosen"]), seconds=data["seconds"],
        resumed_with=data.get("resumed_with", 0),
        collection=tuple(CollectedEpisode(**c) for c in data["collection"]))


def policy_to_json(record: PolicyRecord) -> dict:
    return {"model": record.model, "grasps": dataclasses.asdict(record.grasps),
            "interval": list(record.interval), "bin": record.bin,
            "bin_outcomes": [list(b) for b in record.bin_outcomes]}


def _evaluation_to_json(record: EvaluationRecord) -> dict:
    policies = {name: policy_to_json(p) for name, p in record.policies.items()}
    curve = [{"step": c.step, **dataclasses.asdict(c.grasps), "rate": c.grasps.rate,
              "interval": list(c.grasps.interval)} for c in record.curve]
    return {"policies": policies, "curve": curve,
            "stop_probe": dataclasses.asdict(record.stop_probe), "seconds": record.seconds,
            "close_probe": None if record.close_probe is None else
            dataclasses.asdict(record.close_probe)}


def _evaluation_from_json(data: dict) -> EvaluationRecord:
    policies = {name: PolicyRecord(model=p["model"], grasps=EvalResult(**p["grasps"]),
                                   bin=dict(p["bin"]),
                                   bin_outcomes=tuple(tuple(b) for b in p["bin_outcomes"]))
                for name, p in data["policies"].items()}
    curve = tuple(CurvePoint(c["step"], _curve_grasps(c)) for c in data["curve"])
    return EvaluationRecord(policies=policies, curve=curve,
                            stop_probe=StopValueProbe(**data["stop_probe"]),
                            seconds=data["seconds"], close_probe=None if data.get(
                                "close_probe") is None else OutcomeAUC(**data["close_probe"]))


def _curve_grasps(point: dict) -> EvalResult:
    """A curve point's result; records of earlier versions kept the rate, not the counts."""
    successes = point.get("successes", round(point["rate"] * point["attempts"]))
    return EvalResult(policy=point.get("policy", ""), attempts=point["attempts"],
                      successes=successes,
                      labeled_successes=point.get("labeled_successes", successes),
                      mean_steps=point["mean_steps"])
