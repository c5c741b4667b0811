"""The main job, the README's first command: the whole QT-Opt loop in simulation
(Kalashnikov et al. 2018, Sec. 4-6, App. B and F.3).

1. bootstrap: the scripted policy, with pi_noisy's random actions, collects episodes through the
   ROS 2 cell graph into bags;
2. off-policy: the learner replays the bags (log replay, Bellman updater, trainer);
3. on-policy: the cells switch to pi_noisy served by the policy node from the off-policy model,
   and a learner node fine-tunes on their live episodes (joint fine-tuning, App. F.3),
   announcing each new model to the policy node;
4. evaluation on held-out test objects (Sec. 6.1): grasps with replacement and bin emptying
   for the scripted policy, the off-policy model and the fine-tuned model;
5. a report (report.md, PNG plots, filmstrips) beside the TensorBoard logs.

Every phase leaves its result in the run folder; running the job again on the same folder
skips finished phases (the learner resumes from its checkpoints).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.graph import CellGraphConfig, cell_namespace, sim_cell_graph
from qtopt_collector.runner import run_graph
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_learner.bellman_updater import BellmanUpdaterConfig
from qtopt_learner.engine import InProcessLearner
from qtopt_learner.evaluation import bin_emptying, evaluate
from qtopt_learner.fine_tuning import FineTuningConfig
from qtopt_learner.learner_config import LearnerConfig, learner_preset
from qtopt_learner.report import write_report
from qtopt_learner.targets import TargetConfig
from qtopt_learner.training_graph import run_training_graph
from qtopt_policy.cem import CEMConfig


@dataclass(frozen=True)
class Budget:
    """How much of each phase a run does."""

    bootstrap_episodes: int
    offline_steps: int
    finetune_episodes: int
    finetune_steps: int  # most gradient steps fine-tuning may add (the balancer gates them)
    eval_attempts: int  # protocol 1, per policy
    bin_attempts: int  # protocol 2, one bin per policy
    curve_points: int  # intermediate models on the learning curve
    curve_attempts: int  # protocol 1 attempts per intermediate model


BUDGETS: dict[str, Budget] = {
    # 2 CPU cores, about 15 minutes: the default of the README's first command (measured:
    # bootstrap 0.67 s per episode on 2 cells, ~28 steps/s off-policy, 0.74 s per fine-tuning
    # episode, evaluation 174 s; 878 s in all).
    "15m": Budget(500, 6000, 200, 3000, 40, 20, 3, 16),
    "1h": Budget(1500, 15000, 500, 10000, 100, 30, 5, 30),
    "4h": Budget(5000, 50000, 2000, 40000, 200, 30, 8, 50),
    # A few of everything, for tests and a first look at the pipeline.
    "smoke": Budget(8, 60, 6, 60, 4, 3, 2, 2),
}
# pi_scripted with pi_noisy's random actions: without random terminations and toggles in the
# data, Q(s, stop) and closing in the air are never seen to fail (docs/decisions.md).
BOOTSTRAP_POLICY = "scripted_noisy"
# Camera frames per preset: the policy centre-crops the network's input from them (App. D.1).
CAMERAS = {"sim": (72, 72), "paper": (640, 512)}
STATES = {"image": (False, False), "image+gripper": (True, False),
          "image+gripper+height": (True, True)}


@dataclass(frozen=True)
class AblationConfig:
    """App. A/C ablations, one field each; the defaults are the paper's full method."""

    state: str = "image+gripper+height"  # or "image", "image+gripper"
    reward: str = "penalty"  # -0.05 per step and gamma 0.9; "discount": gamma 0.9 alone
    termination: str = "learned"  # the e action; "scripted": Algorithm 2
    target: str = "clipped_double_q"  # min over two target networks; "double_q": Q_bar_1 only

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("state", self.state, tuple(STATES)),
            ("reward", self.reward, ("penalty", "discount")),
            ("termination", self.termination, ("learned", "scripted")),
            ("target", self.target, ("clipped_double_q", "double_q")),
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
    cells: int = 2
    seed: int = 0
    offline_data: tuple[str, ...] = ()  # bags to train on instead of a bootstrap collection
    bin_objects: int = 28  # Sec. 6.1: the paper's bin held 28 objects
    eval_workers: int = 2
    ablation: AblationConfig = field(default_factory=AblationConfig)

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"budget {self.budget!r}: expected one of {sorted(BUDGETS)}")
        if self.cells < 1 or self.eval_workers < 1:
            raise ValueError(f"cells {self.cells}, eval_workers {self.eval_workers}: "
                             "expected >= 1")

    @property
    def plan(self) -> Budget:
        return BUDGETS[self.budget]

    def sim(self, objects: str) -> SimCellConfig:
        width, height = CAMERAS[self.preset]
        return SimCellConfig(camera_width=width, camera_height=height, object_split=objects)


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
    def bootstrap_dir(self) -> Path:
        return self.run / "bootstrap"

    def learner_config(self, steps: int, fine_tuning: FineTuningConfig = FineTuningConfig(),
                       export_every: int = 1000) -> LearnerConfig:
        ablation, plan = self.config.ablation, self.config.plan
        gripper, height = STATES[ablation.state]
        cem = CEMConfig(learned_termination=False) \
            if ablation.scripted_termination else CEMConfig()
        updater = BellmanUpdaterConfig(
            target=TargetConfig(clipped_double_q=ablation.target == "clipped_double_q"), cem=cem)
        paths = self.config.offline_data or (str(self.bootstrap_dir),)
        return learner_preset(
            self.config.preset, run_dir=str(self.learner_dir), offline_paths=tuple(
                str(Path(p).resolve()) for p in paths),
            steps=steps, seed=self.config.seed, use_gripper_status=gripper, use_height=height,
            updater=updater, fine_tuning=fine_tuning, export_every=export_every,
            checkpoint_every=max(plan.offline_steps // plan.curve_points, 1))

    def cell_config(self, policy: str, model_path: str = "",
                    out_dir: Path | None = None) -> CellGraphConfig:
        ablation = self.config.ablation
        return CellGraphConfig(
            cells=self.config.cells, policy=policy, model_path=model_path,
            out_dir=str(out_dir or self.bootstrap_dir),
            scripted_termination=ablation.scripted_termination,
            step_penalty=ablation.step_penalty, sim=self.config.sim("train"))

    # -- phases -------------------------------------------------------------------------
    def bootstrap(self) -> None:
        plan = self.config.plan
        if self.config.offline_data:
            print(f"[qtopt] training on the given bags: {', '.join(self.config.offline_data)}")
            return
        if not self._phase("bootstrap", f"1/5 bootstrap: {plan.bootstrap_episodes} scripted "
                           f"episodes with pi_noisy's exploration (App. B) on "
                           f"{self.config.cells} simulated cells"):
            return
        started = time.monotonic()
        cells = self.cell_config(BOOTSTRAP_POLICY)
        stats = run_graph(sim_cell_graph(cells), self._namespaces(), plan.bootstrap_episodes,
                          self.bootstrap_dir / "logs", seed=self.config.seed * 1_000_000,
                          progress=self.progress)
        self._finish("bootstrap", started, episodes=stats.episodes,
                     success_rate=stats.success_rate,
                     outcomes=[bool(r[1]) for r in stats.results])

    def off_policy(self) -> None:
        plan = self.config.plan
        if not self._phase("off_policy", f"2/5 off-policy training: {plan.offline_steps} "
                           f"gradient steps ({self.config.preset} preset)"):
            return
        started = time.monotonic()
        export_every = max(plan.offline_steps // plan.curve_points, 1)
        config = self.learner_config(plan.offline_steps, export_every=export_every)
        with InProcessLearner(config, progress=self.progress) as learner:
            summary = learner.train()
        self._finish("off_policy", started, step=int(summary["step"]),
                     model=str(self._model_at(int(summary["step"]))))

    def on_policy(self) -> None:
        plan = self.config.plan
        if not self._phase("on_policy", f"3/5 on-policy joint fine-tuning: "
                           f"{plan.finetune_episodes} pi_noisy episodes, cells + policy node + "
                           "learner node"):
            return
        started = time.monotonic()
        offline = self.state["off_policy"]
        start_step = int(offline["step"])
        fine_tuning = FineTuningConfig(enabled=True, ramp_steps=max(plan.finetune_steps, 1))
        learner = self.learner_config(
            start_step + plan.finetune_steps, fine_tuning=fine_tuning,
            export_every=max(plan.finetune_steps // plan.curve_points, 1))
        cells = self.cell_config("noisy", offline["model"], self.run / "online_cells")
        stats = run_training_graph(cells, learner, plan.finetune_episodes,
                                   self.run / "online_cells" / "logs",
                                   seed=self.config.seed * 1_000_000 + 500_000,
                                   progress=self.progress)
        step = _latest_export_step(self.learner_dir)
        self._finish("on_policy", started, episodes=stats.episodes,
                     success_rate=stats.success_rate, step=step,
                     model=str(self._model_at(step)),
                     outcomes=[bool(r[1]) for r in stats.results])

    def evaluate(self) -> None:
        plan, config = self.config.plan, self.config
        if not self._phase("evaluation", f"4/5 evaluation on held-out test objects: "
                           f"{plan.eval_attempts} grasps with replacement and a bin of "
                           f"{config.bin_objects} objects ({plan.bin_attempts} attempts) per "
                           "policy"):
            return
        started = time.monotonic()
        episode, sim = config.ablation.episode, config.sim("test")
        policies = {"scripted": "scripted", "off-policy": self.state["off_policy"]["model"],
                    "fine-tuned": self.state["on_policy"]["model"]}
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
                          "attempts": r.attempts})
        self._finish("evaluation", started, policies=results, curve=curve)

    def report(self) -> Path:
        print("\n[qtopt] == 5/5 report", flush=True)
        path = write_report(self.run, self.config, self.state)
        print(f"[qtopt] report: {path}\n[qtopt] TensorBoard: tensorboard --logdir "
              f"{self.learner_dir / 'tensorboard'}", flush=True)
        return path

    def run_all(self) -> Path:
        self.bootstrap()
        self.off_policy()
        self.on_policy()
        self.evaluate()
        return self.report()

    # -- helpers ------------------------------------------------------------------------
    def _namespaces(self) -> list[str]:
        return [cell_namespace(i) for i in range(self.config.cells)]

    def _model_at(self, step: int) -> Path:
        return self.learner_dir / "models" / f"model-{step:09d}.pt"

    def _curve_models(self) -> list[tuple[int, Path]]:
        """Every exported model except those the policy table already evaluates."""
        skip = {self.state["off_policy"]["step"], self.state["on_policy"]["step"]}
        return [(s, p) for s, p in _exports(self.learner_dir) if s not in skip]


def _exports(learner_dir: Path) -> list[tuple[int, Path]]:
    models = sorted((learner_dir / "models").glob("model-*.pt"))
    return [(int(p.stem.split("-")[1]), p) for p in models]


def _latest_export_step(learner_dir: Path) -> int:
    exports = _exports(learner_dir)
    if not exports:
        raise RuntimeError(f"no exported model under {learner_dir / 'models'}")
    return exports[-1][0]
