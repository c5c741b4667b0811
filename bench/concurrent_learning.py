"""Experiment: QT-Opt's collect-while-train loop in one process (App. C, F.1, F.3).

Hypothesis: the learned policy of the bootstrap/off-policy/fine-tuning job fails
(docs/benchmarks.md, "Before issue 15: bootstrap, off-policy, fine-tuning") because it trained
mostly on scripted data and collected with the learned policy only at the end. The paper's
off-policy runs on scripted data alone reach 20 % where mixes with a learned policy's data reach
86-94 % (App. C.1, Table 9), and its sim results come from robots collecting with the current
policy while it trains (App. C, F.1). Collecting with pi_noisy around the newest export *while*
training, mixed with scripted_noisy episodes, should lift greedy held-out success above 0 and
toward the scripted policy within a CPU budget.

The loop alternates, synchronously, in rounds: cells (in-process ``SimCell``) collect a round
of episodes, scripted_noisy until ``--switch-step``, then a ``--learned-share`` of pi_noisy
episodes around the newest export; the round's transitions allow ``--steps-per-transition``
gradient steps (the training balancer of App. F.3); a Bellman updater thread labels
transitions all the while. Every ``--eval-every`` steps the export is evaluated greedily on
held-out test objects (fixed seeds), and its Q of the scripted action against alternatives is
scored on the states of 30 scripted episodes (``qtopt_learner.probes.action_ranking``), and the
AUC of Q of the taken actions against the grasp's truth (``outcome_auc``) on those episodes and on
the newest training episodes tells fitting from generalizing; at the end the last export and
the scripted policy are evaluated on ``--final-attempts`` grasps with replacement, same seeds.

Everything lives in the run folder: episodes as rosbag2 (``episodes/scripted``,
``episodes/learned``), the learner's checkpoints and exports (``learner/``), ``results.json``,
``learning_curve.png`` and ``summary.md``. Run the same command again on the folder to resume:
episodes on disk are reloaded, training continues at its checkpoint, finished evaluations are
kept.

    python bench/concurrent_learning.py runs/concurrent --hours 2

A long run should import a frozen copy of the code, so that editing the tree does not change
it mid-run (see ``bench/run_frozen.sh``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections import deque
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig, read_episodes  # noqa: E402
from qtopt_collector.episode import (  # noqa: E402
    TERMINATION_HEIGHTS,
    TERMINATIONS,
    EpisodeConfig,
    run_episode,
)
from qtopt_collector.evaluation import (  # noqa: E402
    evaluate,
    scripted_episodes,
    wilson_interval,
)
from qtopt_collector.sim_cell import SimCell, SimCellConfig  # noqa: E402
from qtopt_learner.app.main_job_config import CAMERAS, sim_cell  # noqa: E402
from qtopt_learner.distributed.bellman_updater import BellmanUpdaterConfig  # noqa: E402
from qtopt_learner.distributed.engine import InProcessLearner  # noqa: E402
from qtopt_learner.distributed.hub import HubConfig  # noqa: E402
from qtopt_learner.distributed.replay import ReplayConfig  # noqa: E402
from qtopt_learner.distributed.roles import OFFLINE, ONLINE  # noqa: E402
from qtopt_learner.learner_config import TRAINER_PRESETS, learner_preset  # noqa: E402
from qtopt_learner.probes import action_ranking, outcome_auc  # noqa: E402
from qtopt_learner.targets import TargetConfig  # noqa: E402
from qtopt_policy.cem import CEMConfig  # noqa: E402
from qtopt_policy.episode_record import EpisodeRecord  # noqa: E402
from qtopt_policy.policies import (  # noqa: E402
    EpsilonGreedyPolicy,
    Policy,
    PolicySource,
    greedy_policy,
    local_policy,
)
from qtopt_policy.spec import ActionBounds  # noqa: E402

EVAL_SEED = 100_000  # held-out attempts use seeds EVAL_SEED.. for every policy
FIT_EPISODES = 200  # training episodes scored at each evaluation


PROPORTIONAL = "proportional"


def online_fraction(text: str) -> float | str:
    """A share in [0, 1], or ``proportional``."""
    if text == PROPORTIONAL:
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: expected a share in [0, 1] or {PROPORTIONAL!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--hours", type=float, default=2.0, help="wall budget of collect + train")
    p.add_argument("--round-episodes", type=int, default=20)
    p.add_argument("--steps-per-transition", type=float, default=2.0)
    p.add_argument("--switch-step", type=int, default=8000,
                   help="gradient steps of scripted_noisy collection before pi_noisy joins")
    p.add_argument("--learned-share", type=float, default=0.5,
                   help="share of pi_noisy episodes after the switch")
    p.add_argument("--online-fraction", type=online_fraction, default=0.5,
                   help="share of each batch from pi_noisy episodes once there are 50, or "
                   f"{PROPORTIONAL!r}: their share of all transitions collected")
    p.add_argument("--step-penalty", type=float, default=0.0, help="0: discount only")
    p.add_argument("--termination", default="learned", choices=list(TERMINATIONS),
                   help="the policy's stop action, Algorithm 2 (closed, above 0.13 m, up), or "
                   "the close itself (the grasp attempt ends the episode)")
    p.add_argument("--termination-height", default="next", choices=list(TERMINATION_HEIGHTS),
                   help="the height Algorithm 2 reads: of the state the upward action leads to, "
                   "or of the state it starts from")
    p.add_argument("--terminal-fraction", type=float, default=0.25)
    p.add_argument("--preset", default="sim", choices=["sim", "sim96"],
                   help="the Q-network and trainer preset; the camera frame follows it")
    p.add_argument("--lr", type=float, default=0.0, help="0: the sim preset's")
    p.add_argument("--polyak", type=float, default=0.0, help="0: the sim preset's")
    p.add_argument("--mc-lower-bound", action="store_true",
                   help="raise every Bellman target to its transition's Monte-Carlo return")
    p.add_argument("--eval-every", type=int, default=10000)
    p.add_argument("--eval-attempts", type=int, default=40)
    p.add_argument("--final-attempts", type=int, default=200)
    p.add_argument("--substeps", type=int, default=40)
    p.add_argument("--respawn-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def run_cells(args: argparse.Namespace) -> tuple[EpisodeConfig, SimCellConfig, SimCellConfig]:
    """The run's episode rules, its training cell and its held-out evaluation cell."""
    episode = EpisodeConfig.ending_by(args.termination, step_penalty=args.step_penalty,
                                      scripted_termination_height=args.termination_height)
    # The main job's training cell (the in-view camera), with this run's physics.
    width, height = CAMERAS[args.preset]
    train_cell = dataclasses.replace(sim_cell(), substeps=args.substeps, label="truth",
                                     respawn_every=args.respawn_every,
                                     camera_width=width, camera_height=height)
    # Held-out evaluation: a freshly seeded bin per attempt, the same for every policy.
    return episode, train_cell, dataclasses.replace(train_cell, respawn_every=1)


class Experiment:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = args.run_dir.resolve()
        self.run.mkdir(parents=True, exist_ok=True)
        self.results_path = self.run / "results.json"
        self.results = json.loads(self.results_path.read_text()) if \
            self.results_path.exists() else {"args": {}, "evals": [], "rounds": [],
                                              "elapsed_s": 0.0}
        self.results["args"] = {k: str(v) for k, v in vars(args).items()}
        self.episode, self.train_cell, self.eval_cell = run_cells(args)
        replay = ReplayConfig(terminal_fraction=args.terminal_fraction)
        trainer = TRAINER_PRESETS[args.preset]
        trainer = dataclasses.replace(trainer, lr=args.lr or trainer.lr,
                                      polyak=args.polyak or trainer.polyak)
        self.config = learner_preset(
            args.preset, run_dir=str(self.run / "learner"), steps=0, seed=args.seed,
            trainer=trainer,
            camera=self.train_cell.camera(), label_source=self.train_cell.label,
            termination=args.termination,
            export_every=args.eval_every, checkpoint_every=1000, log_every=100,
            hub=HubConfig(offline=replay, online=replay, seed=args.seed),
            # Unless the e bit ends episodes, neither targets nor the policy ever choose to stop.
            updater=BellmanUpdaterConfig(
                cem=CEMConfig(learned_termination=args.termination == "learned"),
                target=TargetConfig(mc_lower_bound=args.mc_lower_bound)))
        self.learner = InProcessLearner(self.config, progress=False)
        provenance = dict(camera=self.train_cell.camera().to_json(),
                          label_source=self.train_cell.label)
        self.recorders = {name: BagRecorder(RecorderConfig(
            str(self.run / "episodes" / folder), "cell0", **provenance))
            for name, folder in ((OFFLINE, "scripted"), (ONLINE, "learned"))}
        self.cell = SimCell(self.train_cell)
        self.episodes = {OFFLINE: 0, ONLINE: 0}
        self.transitions = {OFFLINE: 0, ONLINE: 0}
        self.probe_records: list[EpisodeRecord] = []  # scripted, made at the first evaluation
        # The newest training episodes, on which evaluations score the fit (against the
        # held-out probe episodes: fitting against generalizing).
        self.recent: deque[EpisodeRecord] = deque(maxlen=FIT_EPISODES)
        self._reload_episodes()

    def _reload_episodes(self) -> None:
        reloaded = []
        for name, recorder in self.recorders.items():
            records = list(read_episodes(recorder.out_dir))
            self.learner.hub.add_episodes(name, records)
            self.episodes[name] = len(records)
            self.transitions[name] += sum(len(r.steps) for r in records)
            reloaded += records
        # Seeds grow with the episodes collected, across both buffers: newest last.
        self.recent.extend(sorted(reloaded, key=lambda r: r.seed))
        print(f"[exp] resumed: {self.episodes} episodes, {self.transitions} transitions, "
              f"step {self.learner.loop.trainer.step}", flush=True)

    @property
    def step(self) -> int:
        return self.learner.loop.trainer.step

    def _save(self) -> None:
        tmp = self.results_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.results, indent=1))
        tmp.replace(self.results_path)

    def _learned_policy(self, seed: int) -> Policy | None:
        latest = self.config.layout.latest_model
        if self.step < self.args.switch_step or not latest.exists():
            return None
        return EpsilonGreedyPolicy(greedy_policy(str(latest), seed=seed), ActionBounds(),
                                   seed=seed)

    def collect_round(self) -> None:
        args = self.args
        total = sum(self.episodes.values())
        learned = self._learned_policy(args.seed * 10_000_000 + total)
        outcomes = {OFFLINE: [], ONLINE: []}
        started = time.monotonic()
        for k in range(args.round_episodes):
            seed = args.seed * 10_000_000 + total + k
            use_learned = learned is not None and (k + 0.5) / args.round_episodes \
                < args.learned_share
            name = ONLINE if use_learned else OFFLINE
            policy = learned if use_learned else local_policy("scripted_noisy", ActionBounds(),
                                                              seed=seed)
            record = run_episode(self.cell, policy, seed, self.episode, model_version=self.step)
            self._store(name, record)
            outcomes[name].append(bool(record.ground_truth))
        if self.episodes[ONLINE] >= 50:
            self.learner.hub.set_on_policy_fraction(self.online_fraction())
        self.results["rounds"].append({
            "step": self.step, "episodes": sum(self.episodes.values()),
            "scripted": outcomes[OFFLINE], "learned": outcomes[ONLINE],
            "collect_s": round(time.monotonic() - started, 1)})

    def _store(self, name: str, record: EpisodeRecord) -> None:
        self.recorders[name].write(record)
        self.learner.hub.add_episodes(name, [record])
        self.recent.append(record)
        self.episodes[name] += 1
        self.transitions[name] += len(record.steps)

    def online_fraction(self) -> float:
        """The online buffer's share of each batch: fixed, or its share of the transitions (an
        on-policy buffer of failures then cannot outweigh the data that holds the successes)."""
        if self.args.online_fraction != PROPORTIONAL:
            return self.args.online_fraction
        return self.transitions[ONLINE] / sum(self.transitions.values())

    def evaluate_latest(self) -> None:
        model = self.config.layout.latest_model
        if not model.exists() or any(e["step"] == self.step for e in self.results["evals"]):
            return
        started = time.monotonic()
        r = evaluate(PolicySource(model_path=str(model)), self.args.eval_attempts, seed=EVAL_SEED,
                     cell_config=self.eval_cell, episode_config=self.episode, progress=False)
        if not self.probe_records:
            self.probe_records = scripted_episodes(self.eval_cell, self.episode, 30)
        ranking = action_ranking(str(model), self.probe_records)
        fit = {"training": outcome_auc(str(model), self.recent),
               "held_out": outcome_auc(str(model), self.probe_records)}
        self.results["evals"].append({
            "step": self.step, "episodes": sum(self.episodes.values()),
            "successes": r.successes, "attempts": r.attempts, "mean_steps": r.mean_steps,
            "seconds": round(time.monotonic() - started, 1),
            "action_ranking": [dataclasses.asdict(row) for row in ranking],
            "outcome_auc": {k: dataclasses.asdict(v) for k, v in fit.items()}})
        print(f"[exp] eval at step {self.step}: {r.summary()}", flush=True)
        for row in ranking:
            print(f"[exp]   Q scripted, its return, vs (close here, open here, down, up) "
                  f"{row.row()}",
                  flush=True)
        for name, probe in fit.items():
            print(f"[exp]   {name}: {probe.summary()}", flush=True)

    def run_loop(self) -> None:
        args = self.args
        budget = args.hours * 3600.0
        with self.learner:
            while self.results["elapsed_s"] < budget:
                started = time.monotonic()
                before = sum(self.transitions.values())
                self.collect_round()
                target = self.step + int(args.steps_per_transition
                                             * (sum(self.transitions.values()) - before))
                self.learner.train(target)
                # Each training call ends with a checkpoint and an export (model.pt), which the
                # next round's pi_noisy loads, as robots reload new weights (App. F.1).
                if self.step // args.eval_every > max(
                        [e["step"] for e in self.results["evals"]] + [0]) // args.eval_every:
                    self.evaluate_latest()
                self.results["elapsed_s"] += time.monotonic() - started
                self._save()
                self._progress()
        self.final()

    def _progress(self) -> None:
        recent = self.results["rounds"][-10:]
        rate = {k: _rate([o for r in recent for o in r[k]]) for k in ("scripted", "learned")}
        print(f"[exp] {self.results['elapsed_s'] / 60:6.1f} min  step {self.step:7d}  "
              f"episodes {self.episodes}  recent success scripted {rate['scripted']}  "
              f"learned {rate['learned']}", flush=True)

    def final(self) -> None:
        final = self.results.setdefault("final", {})
        model = str(self.config.layout.latest_model)
        for name, policy in (("greedy", PolicySource(model_path=model)),
                             ("scripted", PolicySource(local="scripted"))):
            if final.get(name, {}).get("step") == self.step:
                continue
            r = evaluate(policy, self.args.final_attempts, seed=EVAL_SEED,
                         cell_config=self.eval_cell, episode_config=self.episode,
                         progress=True)
            final[name] = {"successes": r.successes, "attempts": r.attempts,
                           "mean_steps": r.mean_steps, "step": self.step}
            print(f"[exp] final {name}: {r.summary()}", flush=True)
            self._save()
        self.plot()
        self.summary()

    def plot(self) -> None:
        evals = self.results["evals"]
        rounds = self.results["rounds"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        if evals:
            steps = [e["step"] for e in evals]
            rates = [e["successes"] / e["attempts"] for e in evals]
            low_high = [wilson_interval(e["successes"], e["attempts"]) for e in evals]
            below = [r - lo for r, (lo, _) in zip(rates, low_high, strict=True)]
            above = [hi - r for r, (_, hi) in zip(rates, low_high, strict=True)]
            axes[0].errorbar(steps, rates, yerr=[below, above], marker="o",
                             label="greedy, held-out")
        greedy = self.results.get("final", {}).get("greedy")
        if greedy:  # the final evaluation's 200 grasps, beside the periodic 40
            lo, hi = wilson_interval(greedy["successes"], greedy["attempts"])
            rate = greedy["successes"] / greedy["attempts"]
            axes[0].errorbar([greedy["step"]], [rate], yerr=[[rate - lo], [hi - rate]],
                             marker="s", color="C0", label="greedy, held-out, final")
        scripted = self.results.get("final", {}).get("scripted")
        if scripted:
            axes[0].axhline(scripted["successes"] / scripted["attempts"], color="gray",
                            linestyle="--", label="scripted, held-out")
        axes[0].set(xlabel="gradient steps", ylabel="grasp success", ylim=(0, 1))
        axes[0].legend()
        window, xs, ys = 10, [], []
        for i in range(len(rounds)):
            learned = [o for r in rounds[max(0, i - window + 1):i + 1] for o in r["learned"]]
            if learned:
                xs.append(rounds[i]["episodes"])
                ys.append(sum(learned) / len(learned))
        axes[1].plot(xs, ys, label="pi_noisy collection (train objects)")
        axes[1].set(xlabel="grasps collected", ylabel="success", ylim=(0, 1))
        axes[1].legend()
        fig.tight_layout()
        fig.savefig(self.run / "learning_curve.png", dpi=100)
        plt.close(fig)

    def summary(self) -> None:
        final = self.results["final"]
        lines = ["# Concurrent collect-while-train experiment", "",
                 f"Arguments: `{json.dumps(self.results['args'])}`", "",
                 f"Elapsed (collect + train + periodic eval): "
                 f"{self.results['elapsed_s'] / 60:.1f} min; episodes {self.episodes}; "
                 f"transitions {sum(self.transitions.values())}; gradient steps "
                 f"{self.step}.", "",
                 "| policy | successes | rate | 95 % Wilson | mean steps |",
                 "|---|---|---|---|---|"]
        for name, r in final.items():
            lo, hi = wilson_interval(r["successes"], r["attempts"])
            lines.append(f"| {name} | {r['successes']}/{r['attempts']} | "
                         f"{r['successes'] / r['attempts']:.1%} | {lo:.1%}-{hi:.1%} | "
                         f"{r['mean_steps']:.1f} |")
        lines += ["", "| step | held-out greedy | mean steps |", "|---|---|---|"]
        lines += [f"| {e['step']} | {e['successes']}/{e['attempts']} | {e['mean_steps']:.1f} |"
                  for e in self.results["evals"]]
        (self.run / "summary.md").write_text("\n".join(lines) + "\n")


def _rate(outcomes: list[bool]) -> str:
    return f"{sum(outcomes)}/{len(outcomes)}" if outcomes else "-"


def main() -> None:
    args = parse_args()
    if not math.isfinite(args.hours) or args.hours <= 0:
        raise SystemExit(f"concurrent_learning: error: --hours {args.hours}: expected > 0")
    Experiment(args).run_loop()


if __name__ == "__main__":
    main()
