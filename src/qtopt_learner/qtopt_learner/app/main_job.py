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
reloads them and continues from its checkpoint, evaluation attempts already finished are not
run again, finished phases are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

from qtopt_collector.bag_recorder import read_episodes, repair_bag
from qtopt_collector.episode_driver import first_episode_seed
from qtopt_collector.evaluation import AttemptLog, bin_emptying, evaluate, scripted_episodes
from qtopt_collector.graph import CellGraphConfig
from qtopt_learner.app.ablations import STATES
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_learner.app.report import write_report
from qtopt_learner.app.run_layout import RunLayout
from qtopt_learner.app.run_record import (
    CollectedEpisode,
    CurvePoint,
    EvaluationRecord,
    PolicyRecord,
    RunRecord,
    TrainRecord,
)
from qtopt_learner.app.training_graph import run_concurrent_graph
from qtopt_learner.collection import CollectionConfig
from qtopt_learner.distributed.bellman_updater import BellmanUpdaterConfig
from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.distributed.hub import HubConfig
from qtopt_learner.distributed.replay import ReplayConfig
from qtopt_learner.learner_config import LearnerConfig, learner_preset
from qtopt_learner.probes import outcome_auc, stop_value_auc
from qtopt_learner.targets import TargetConfig
from qtopt_policy.cem import CEMConfig
from qtopt_policy.config_files import save_config
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.policies import PolicySource

# Share of each replay sample taken from episodes' last transitions (docs/decisions.md).
TERMINAL_FRACTION = 0.25
EXPORT_EVERY = 500  # gradient steps between exports: the collecting policy reloads each one


class MainJob:
    """The phases of the main job over one run folder (see the module docstring)."""

    def __init__(self, config: MainJobConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.layout = RunLayout(Path(config.run_dir).resolve())
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self.record = RunRecord.load(self.layout.record)
        save_config(config, self.layout.config)

    # -- bookkeeping ------------------------------------------------------------------
    @staticmethod
    def _phase(done: bool, title: str) -> bool:
        """True when the phase still has to run; prints the phase header."""
        print(f"\n[qtopt] == {title}{' (done, skipped)' if done else ''}", flush=True)
        return not done

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
            config.preset, run_dir=str(self.layout.learner.root), offline_paths=tuple(
                str(Path(p).resolve()) for p in config.offline_data),
            steps=plan.steps, seed=config.seed, engine=config.engine,
            camera=config.sim("train").camera(), label_source=config.label,
            termination=ablation.termination,
            use_gripper_status=gripper, use_height=height, updater=updater, hub=hub,
            fine_tuning=fine_tuning,
            export_every=min(EXPORT_EVERY, max(plan.steps // (2 * plan.curve_points), 1)),
            checkpoint_every=min(1000, plan.steps))

    def cell_config(self) -> CellGraphConfig:
        """Cells that run scripted_noisy or pi_noisy as each goal asks; the policy node
        serves the learner's newest export (reloaded when it changes)."""
        return CellGraphConfig(
            cells=self.config.num_cells, policy="noisy",
            model_path=str(self.layout.learner.latest_model),
            out_dir=str(self.layout.episodes), episode=self.config.ablation.episode,
            sim=self.config.sim("train"))

    # -- phases -------------------------------------------------------------------------
    def collect_and_train(self) -> TrainRecord:
        config, plan, layout = self.config, self.config.plan, self.layout
        if not self._phase(self.record.train is not None,
                           f"1/3 collect and train at once: {plan.episodes} episodes "
                           f"on {config.num_cells} simulated cells, up to {plan.steps} "
                           f"gradient steps ({plan.steps_per_transition:g} per transition), "
                           f"pi_noisy joins at step {plan.switch_step}"):
            return self.record.train
        started = time.monotonic()
        recorded = _recorded_seeds(layout.episodes)
        if recorded:
            print(f"[qtopt] resuming: {len(recorded)} episodes already recorded", flush=True)
        seeds = collection_seeds(recorded, plan.episodes, config.seed)
        stats = run_concurrent_graph(
            self.cell_config(), self.learner_config(), self.collection_config(), len(seeds),
            layout.logs, online_dir=layout.episodes, seed=seeds.start, progress=self.progress)
        collection = tuple(c for _, c in sorted((r.seed, _collected(r))
                                                for r in read_episodes(layout.episodes)))
        step = layout.learner.latest_export_step()
        self.record.train = TrainRecord(
            episodes=len(collection), step=step, model=str(layout.learner.model_at(step)),
            chosen=dict(stats.chosen), collection=collection,
            seconds=round(time.monotonic() - started, 1), resumed_with=len(recorded))
        self.record.save(layout.record)
        return self.record.train

    def evaluate(self) -> EvaluationRecord:
        plan, config = self.config.plan, self.config
        if not self._phase(self.record.evaluation is not None,
                           f"2/3 evaluation on held-out test objects: "
                           f"{plan.eval_attempts} grasps with replacement and a bin of "
                           f"{config.bin_objects} objects ({plan.bin_attempts} attempts) per "
                           "policy"):
            return self.record.evaluation
        started = time.monotonic()
        episode, sim = config.ablation.episode, config.sim("test")
        log = AttemptLog(self.layout.evaluation_attempts)
        if log.path.exists():
            print(f"[qtopt] resuming: attempts already in {log.path} are not run again",
                  flush=True)
        model = self.record.train.model
        policies = {"scripted": PolicySource(local="scripted"),
                    "learned": PolicySource(model_path=model)}
        results = {}
        for name, source in policies.items():
            grasps = evaluate(source, plan.eval_attempts, workers=config.eval_workers,
                              cell_config=sim, episode_config=episode, progress=self.progress,
                              log=log)
            bins = bin_emptying(source, objects=config.bin_objects,
                                attempts=plan.bin_attempts, cell_config=sim,
                                episode_config=episode, progress=self.progress, log=log)
            print(f"[qtopt] {name}: {grasps.summary()}\n[qtopt] {name}: {bins.summary()}",
                  flush=True)
            results[name] = PolicyRecord.of(grasps, bins)
        curve = []
        for step, path in self._curve_models():
            r = evaluate(PolicySource(model_path=str(path)), plan.curve_attempts,
                         workers=config.eval_workers, cell_config=sim, episode_config=episode,
                         progress=self.progress, log=log)
            curve.append(CurvePoint(step, r))
        # Scripted episodes on test objects close on objects and beside them and lift full and
        # empty grippers: does the learned Q tell the grasps that hold from the others?
        scripted = scripted_episodes(sim, episode, plan.eval_attempts)
        probe, close = stop_value_auc(model, scripted), outcome_auc(model, scripted)
        # no lifted state under the close rule: the stop probe has nothing to say
        for summary in ([probe.summary()] if probe.states else []) + [close.summary()]:
            print(f"[qtopt] learned: {summary}", flush=True)
        self.record.evaluation = EvaluationRecord(
            policies=results, curve=tuple(curve), stop_probe=probe, close_probe=close,
            seconds=round(time.monotonic() - started, 1))
        self.record.save(self.layout.record)
        return self.record.evaluation

    def report(self) -> Path:
        print("\n[qtopt] == 3/3 report", flush=True)
        path = write_report(self.layout, self.config, self.record)
        print(f"[qtopt] report: {path}\n[qtopt] TensorBoard: tensorboard --logdir "
              f"{self.layout.learner.tensorboard}", flush=True)
        return path

    def run_all(self) -> Path:
        self.collect_and_train()
        self.evaluate()
        return self.report()

    # -- helpers ------------------------------------------------------------------------
    def _curve_models(self) -> list[tuple[int, Path]]:
        """``curve_points`` exports spread evenly over the run, the final one excluded (the
        policy table evaluates it)."""
        final = self.record.train.step
        exports = [(s, p) for s, p in self.layout.learner.exports() if s != final]
        points = self.config.plan.curve_points
        if len(exports) <= points:
            return exports
        return [exports[round((k + 1) * len(exports) / points) - 1] for k in range(points)]


def collection_seeds(recorded: Collection[int], episodes: int, run_seed: int) -> range:
    """Seeds of the episodes still to collect: ``episodes`` less those ``recorded``, numbered
    on above every recorded seed (a lost episode's retry included), so none repeats; a fresh
    run starts at ``first_episode_seed(run_seed)``."""
    first = max(recorded, default=first_episode_seed(run_seed) - 1) + 1
    return range(first, first + max(episodes - len(recorded), 0))


def _collected(record: EpisodeRecord) -> CollectedEpisode:
    return CollectedEpisode(policy=record.policy_name, success=bool(record.success),
                            model_version=record.model_version)


def _recorded_seeds(root: Path) -> list[int]:
    """Seeds of the episodes recorded below ``root``, after listing what an interrupted
    recorder left unlisted (the cells' recorders do the same when they start)."""
    if not root.exists():
        return []
    for bag in root.iterdir():
        if bag.is_dir() and not bag.name.startswith("."):
            repair_bag(bag)
    return [r.seed for r in read_episodes(root)]
