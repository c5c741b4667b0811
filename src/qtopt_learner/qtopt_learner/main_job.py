"""The main job, the README's first command: QT-Opt's collect-while-train loop in simulation
(Kalashnikov et al. 2018, Sec. 4-6, App. B, C and F).

1. collect and train at once: simulated cells run episodes through the ROS 2 cell graph and
   record them to rosbag2 while a learner node trains on them live (App. C, F.1): the cells
   collect with scripted_noisy, then, after ``switch_step`` gradient steps, with a mix of
   pi_noisy around the newest export (the policy node reloads every export) and
   scripted_noisy; a training balancer holds gradient steps per collected transition
   (App. F.3). Given bags (``offline_data``) are replayed beside the live episodes;
2. evaluation on held-out test objects (Sec. 6.1): grasps with replacement and bin emptying
   for the scripted policy and the learned one, and a learning curve over the exports;
3. a report (report.md, PNG plots, filmstrips) beside the TensorBoard logs.

Everything stays in the run folder; running the job again on the same folder resumes: the
episodes already recorded count towards the budget (new ones get new seeds), the learner
reloads them and continues from its checkpoint, finished phases are skipped.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from qtopt_collector.bag_recorder import read_episodes, repair_bag
from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.graph import CellGraphConfig
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_collector.success_detection import LABELS
from qtopt_learner.collection import CollectionConfig
from qtopt_learner.distributed.bellman_updater import BellmanUpdaterConfig
from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.distributed.hub import HubConfig
from qtopt_learner.distributed.replay import ReplayConfig
from qtopt_learner.evaluation import bin_emptying, evaluate
from qtopt_learner.learner_config import ENGINES, LearnerConfig, learner_preset
from qtopt_learner.probes import scripted_episodes, stop_value_auc
from qtopt_learner.report import write_report
from qtopt_learner.targets import TargetConfig
from qtopt_learner.training_graph import run_concurrent_graph
from qtopt_policy.cem import CEMConfig
from qtopt_policy.episode_record import EpisodeRecord


@dataclass(frozen=True)
class Budget:
    """How much a run collects, trains and evaluates."""

    episodes: int  # collected by the cells while the learner trains
    steps: int  # the most gradient steps the learner takes
    steps_per_transition: float  # App. F.3's balancer: gradient steps per collected transition
    switch_step: int  # App. C: scripted collection alone until this gradient step
    eval_attempts: int  # protocol 1, per policy
    bin_attempts: int  # protocol 2, one bin per policy
    curve_points: int  # intermediate models on the learning curve
    curve_attempts: int  # protocol 1 attempts per intermediate model
    cells: int = 2  # simulated cells; 0: one per core beyond the two the learner uses


BUDGETS: dict[str, Budget] = {
    # 2 CPU cores, about 15 minutes: the default of the README's first command (measured
    # 792 s: collection paced to the learner 470 s, training to 526 s, evaluation 262 s).
    # Steps are sized to the episodes: about 10.7 transitions per episode times the ratio.
    "15m": Budget(400, 8000, 2.0, 2000, 40, 20, 3, 16),
    # The long CPU budget: 2 cores, at most 2.5 h with evaluation (bench/concurrent_learning.py
    # runs the same recipe in one process).
    "2h": Budget(5000, 100_000, 2.0, 8000, 200, 30, 6, 40),
    # A machine with a GPU and more cores: cells on every core but two, a CUDA trainer.
    "gpu": Budget(6000, 120_000, 2.0, 8000, 200, 30, 6, 40, cells=0),
    # A few of everything, for tests and a first look at the pipeline.
    "smoke": Budget(12, 120, 4.0, 40, 4, 3, 2, 2),
}
# The in-view camera keeps the lifted gripper in frame (docs/decisions.md); cells keep their
# bin for 10 episodes (App. D.3's protocol) and step the physics 40 times per action.
SIM_CELL = SimCellConfig(camera_target_height=0.1, camera_pitch_deg=-60.0,
                         camera_distance=0.8, camera_fov_deg=55.0, substeps=40,
                         respawn_every=10)
# Camera frames per preset: the policy centre-crops the network's input from them (App. D.1).
CAMERAS = {"sim": (72, 72), "paper": (640, 512)}
STATES = {"image": (False, False), "image+gripper": (True, False),
          "image+gripper+height": (True, True)}
# Share of each replay sample taken from episodes' last transitions (docs/decisions.md).
TERMINAL_FRACTION = 0.25
EXPORT_EVERY = 500  # gradient steps between exports: the collecting policy reloads each one
EPISODES_DIR = "episodes"
OLD_PHASES = {"bootstrap", "off_policy", "on_policy"}  # state.json keys of the earlier job


@dataclass(frozen=True)
class AblationConfig:
    """App. A/C ablations, one field each; the defaults are the method this job runs."""

    state: str = "image+gripper+height"  # or "image", "image+gripper"
    # gamma 0.9 alone (one of Table 7's rows); "penalty" adds -0.05 per step, which with
    # targets clipped to [0, 1] zeroes every target a few steps before a likely failure
    reward: str = "discount"
    termination: str = "learned"  # the e action; "scripted": Algorithm 2
    target: str = "clipped_double_q"  # min over two target networks; "double_q": Q_bar_1 only
    # Not the paper's: "monte_carlo" raises each target to its transition's return
    bound: str = "none"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("state", self.state, tuple(STATES)),
            ("reward", self.reward, ("penalty", "discount")),
            ("termination", self.termination, ("learned", "scripted")),
            ("target", self.target, ("clipped_double_q", "double_q")),
            ("bound", self.bound, ("none", "monte_carlo")),
        ):
            if value not in allowed:
                raise ValueError(f"ablation {name} {value!r}: expected one of {allowed}")

    @property
    def step_penalty(self) -> float:
        return EpisodeConfig().step_penalty if self.reward == "penalty" else 0.0

    @property
    def scripted_termination(self) -> bool:
        return self.termination == "scripted"

    @property
    def episode(self) -> EpisodeConfig:
        return EpisodeConfig(scripted_termination=self.scripted_termination,
                             step_penalty=self.step_penalty)


@dataclass(frozen=True)
class MainJobConfig:
    run_dir: str
    budget: str = "15m"
    preset: str = "sim"  # Q-network and trainer preset: "paper" wants a GPU
    cells: int = 0  # simulated cells; 0: the budget's number
    engine: str = "inprocess"  # the learner's engine: "inprocess" or "ray"
    seed: int = 0
    offline_data: tuple[str, ...] = ()  # bags replayed beside the live episodes
    # How training episodes are labeled: the simulator's truth, or image subtraction after
    # the drop test as on a real cell (App. D.3); evaluation counts the truth either way.
    label: str = "truth"
    learned_share: float = CollectionConfig.learned_share  # pi_noisy's share after the switch
    bin_objects: int = 28  # Sec. 6.1: the paper's bin held 28 objects
    eval_workers: int = 2
    ablation: AblationConfig = field(default_factory=AblationConfig)

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"budget {self.budget!r}: expected one of {sorted(BUDGETS)}")
        if self.cells < 0 or self.eval_workers < 1:
            raise ValueError(f"cells {self.cells}, eval_workers {self.eval_workers}: "
                             "expected >= 0 and >= 1")
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r}: expected one of {ENGINES}")
        if self.label not in LABELS:
            raise ValueError(f"label {self.label!r}: expected one of {LABELS}")
        CollectionConfig(learned_share=self.learned_share)  # validates the share

    @property
    def plan(self) -> Budget:
        return BUDGETS[self.budget]

    @property
    def num_cells(self) -> int:
        if self.cells:
            return self.cells
        return self.plan.cells or max((os.cpu_count() or 3) - 2, 1)

    def sim(self, objects: str) -> SimCellConfig:
        """Training cells (``train``) keep their bin for a few episodes and label as
        configured; evaluation cells (``test``) draw a fresh bin from every attempt's seed, the
        same for every policy, and run the drop test, so the report sets the detector's label
        beside the simulator's truth that evaluation counts."""
        width, height = CAMERAS[self.preset]
        train = objects == "train"
        return dataclasses.replace(
            SIM_CELL, camera_width=width, camera_height=height, object_split=objects,
            respawn_every=SIM_CELL.respawn_every if train else 1,
            label=self.label if train else "detector")


class MainJob:
    """The phases of the main job over one run folder (see the module docstring)."""

    def __init__(self, config: MainJobConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.run = Path(config.run_dir).resolve()
        self.run.mkdir(parents=True, exist_ok=True)
        self.state_path = self.run / "state.json"
        self.state: dict = json.loads(self.state_path.read_text()) \
            if self.state_path.exists() else {}
        if OLD_PHASES & set(self.state):
            raise ValueError(f"run folder {self.run}: made by the earlier bootstrap/off-policy/"
                             "fine-tuning job; expected a new run folder for the "
                             "collect-while-train job")
        (self.run / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))

    # -- bookkeeping ------------------------------------------------------------------
    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.state_path)

    def _phase(self, name: str, title: str) -> bool:
        """True when ``name`` still has to run; prints the phase header."""
        done = name in self.state
        print(f"\n[qtopt] == {title}{' (done, skipped)' if done else ''}", flush=True)
        return not done

    def _finish(self, name: str, started: float, **result) -> None:
        self.state[name] = {**result, "seconds": round(time.monotonic() - started, 1)}
        self._save()

    @property
    def learner_dir(self) -> Path:
        return self.run / "learner"

    @property
    def episodes_dir(self) -> Path:
        return self.run / EPISODES_DIR

    def collection_config(self) -> CollectionConfig:
        return CollectionConfig(switch_step=self.config.plan.switch_step,
                                learned_share=self.config.learned_share)

    def learner_config(self) -> LearnerConfig:
        """The learner of the concurrent loop: the balancer gates every step on collected
        transitions from the first one; given bags ramp in as App. F.3's offline share."""
        config, plan = self.config, self.config.plan
        ablation = config.ablation
        gripper, height = STATES[ablation.state]
        updater = BellmanUpdaterConfig(
            target=TargetConfig(clipped_double_q=ablation.target == "clipped_double_q",
                                mc_lower_bound=ablation.bound == "monte_carlo"),
            cem=CEMConfig(learned_termination=not ablation.scripted_termination))
        replay = ReplayConfig(terminal_fraction=TERMINAL_FRACTION)
        # Bags keep the rewards they were recorded with: relabel them under this run's reward.
        hub = HubConfig(offline=replay, online=replay, seed=config.seed, relabel_rewards=True,
                        step_penalty=ablation.step_penalty)
        fine_tuning = FineTuningConfig(enabled=True, ramp_steps=max(plan.steps // 2, 1),
                                       steps_per_transition=plan.steps_per_transition)
        return learner_preset(
            config.preset, run_dir=str(self.learner_dir), offline_paths=tuple(
                str(Path(p).resolve()) for p in config.offline_data),
            steps=plan.steps, seed=config.seed, engine=config.engine,
            camera=config.sim("train").camera(), label_source=config.label,
            use_gripper_status=gripper, use_height=height, updater=updater, hub=hub,
            fine_tuning=fine_tuning,
            export_every=min(EXPORT_EVERY, max(plan.steps // (2 * plan.curve_points), 1)),
            checkpoint_every=min(1000, plan.steps))

    def cell_config(self) -> CellGraphConfig:
        """Cells that run scripted_noisy or pi_noisy as each goal asks; the policy node
        serves the learner's newest export (``model.pt``, reloaded when it changes)."""
        return CellGraphConfig(
            cells=self.config.num_cells, policy="noisy",
            model_path=str(self.learner_dir / "model.pt"), out_dir=str(self.episodes_dir),
            episode=self.config.ablation.episode, sim=self.config.sim("train"))

    # -- phases -------------------------------------------------------------------------
    def collect_and_train(self) -> None:
        config, plan = self.config, self.config.plan
        if not self._phase("train", f"1/3 collect and train at once: {plan.episodes} episodes "
                           f"on {config.num_cells} simulated cells, up to {plan.steps} "
                           f"gradient steps ({plan.steps_per_transition:g} per transition), "
                           f"pi_noisy joins at step {plan.switch_step}"):
            return
        started = time.monotonic()
        seeds = _recorded_seeds(self.episodes_dir)
        if seeds:
            print(f"[qtopt] resuming: {len(seeds)} episodes already recorded", flush=True)
        # New episodes (retries included) take seeds above every recorded one.
        first_seed = max(seeds, default=config.seed * 1_000_000 - 1) + 1
        stats = run_concurrent_graph(
            self.cell_config(), self.learner_config(), self.collection_config(),
            max(plan.episodes - len(seeds), 0), self.run / "logs",
            online_dir=self.episodes_dir, seed=first_seed, progress=self.progress)
        collection = [c for _, c in sorted((r.seed, _collected(r))
                                           for r in read_episodes(self.episodes_dir))]
        step = _latest_export_step(self.learner_dir)
        self._finish("train", started, episodes=len(collection), step=step,
                     model=str(self._model_at(step)), chosen=dict(stats.chosen),
                     collection=collection)

    def evaluate(self) -> None:
        plan, config = self.config.plan, self.config
        if not self._phase("evaluation", f"2/3 evaluation on held-out test objects: "
                           f"{plan.eval_attempts} grasps with replacement and a bin of "
                           f"{config.bin_objects} objects ({plan.bin_attempts} attempts) per "
                           "policy"):
            return
        started = time.monotonic()
        episode, sim = config.ablation.episode, config.sim("test")
        policies = {"scripted": "scripted", "learned": self.state["train"]["model"]}
        results = {}
        for name, model in policies.items():
            grasps = evaluate(model, plan.eval_attempts, workers=config.eval_workers,
                              cell_config=sim, episode_config=episode, progress=self.progress)
            bins = bin_emptying(model, objects=config.bin_objects, attempts=plan.bin_attempts,
                                cell_config=sim, episode_config=episode,
                                progress=self.progress)
            print(f"[qtopt] {name}: {grasps.summary()}\n[qtopt] {name}: {bins.summary()}",
                  flush=True)
            results[name] = {"model": model, "grasps": dataclasses.asdict(grasps),
                             "interval": list(grasps.interval),
                             "bin": {f"first_{n}": bins.rate_first(n) for n in bins.checkpoints},
                             "bin_outcomes": [list(b) for b in bins.outcomes]}
        curve = []
        for step, model in self._curve_models():
            r = evaluate(str(model), plan.curve_attempts, workers=config.eval_workers,
                         cell_config=sim, episode_config=episode, progress=self.progress)
            curve.append({"step": step, "rate": r.rate, "interval": list(r.interval),
                          "attempts": r.attempts, "mean_steps": r.mean_steps})
        # Scripted episodes on test objects lift both full and empty grippers: does the learned
        # Q(s, stop) tell them apart?
        probe = stop_value_auc(self.state["train"]["model"], scripted_episodes(
            sim, episode, plan.eval_attempts))
        print(f"[qtopt] learned: {probe.summary()}", flush=True)
        self._finish("evaluation", started, policies=results, curve=curve,
                     stop_probe=dataclasses.asdict(probe))

    def report(self) -> Path:
        print("\n[qtopt] == 3/3 report", flush=True)
        path = write_report(self.run, self.config, self.state)
        print(f"[qtopt] report: {path}\n[qtopt] TensorBoard: tensorboard --logdir "
              f"{self.learner_dir / 'tensorboard'}", flush=True)
        return path

    def run_all(self) -> Path:
        self.collect_and_train()
        self.evaluate()
        return self.report()

    # -- helpers ------------------------------------------------------------------------
    def _model_at(self, step: int) -> Path:
        return self.learner_dir / "models" / f"model-{step:09d}.pt"

    def _curve_models(self) -> list[tuple[int, Path]]:
        """``curve_points`` exports spread evenly over the run, the final one excluded (the
        policy table evaluates it)."""
        final = self.state["train"]["step"]
        exports = [(s, p) for s, p in _exports(self.learner_dir) if s != final]
        points = self.config.plan.curve_points
        if len(exports) <= points:
            return exports
        return [exports[round((k + 1) * len(exports) / points) - 1] for k in range(points)]


def _collected(record: EpisodeRecord) -> dict:
    """What the report's collection curve needs of a recorded episode."""
    return {"policy": record.policy_name, "success": bool(record.success),
            "model_version": record.model_version}


def _recorded_seeds(root: Path) -> list[int]:
    """Seeds of the episodes recorded below ``root``, after listing what an interrupted
    recorder left unlisted (the cells' recorders do the same when they start)."""
    if not root.exists():
        return []
    for bag in root.iterdir():
        if bag.is_dir() and not bag.name.startswith("."):
            repair_bag(bag)
    return [r.seed for r in read_episodes(root)]


def _exports(learner_dir: Path) -> list[tuple[int, Path]]:
    models = sorted((learner_dir / "models").glob("model-*.pt"))
    return [(int(p.stem.split("-")[1]), p) for p in models]


def _latest_export_step(learner_dir: Path) -> int:
    exports = _exports(learner_dir)
    if not exports:
        raise RuntimeError(f"no exported model under {learner_dir / 'models'}")
    return exports[-1][0]
