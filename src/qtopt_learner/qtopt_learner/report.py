"""The main job's report: report.md with the policy table (Sec. 6.1 protocols), the margin
of the learned policy over the scripted baseline with its 95 % interval, learning curves
(success vs gradient steps and vs grasps, the collecting policies' success) and episode
filmstrips as PNG."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qtopt_collector.episode import EpisodeConfig, run_episode  # noqa: E402
from qtopt_collector.filmstrip import filmstrip  # noqa: E402
from qtopt_collector.sim_cell import SimCell, SimCellConfig  # noqa: E402
from qtopt_learner.evaluation import make_policy, wilson_interval  # noqa: E402
from qtopt_learner.probes import StopValueProbe  # noqa: E402

FILMSTRIP_EPISODES = 2  # per policy
FILMSTRIP_SEED = 300_000


def difference_interval(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 and its 95 % interval (Newcombe's hybrid score method from Wilson intervals)."""
    p1, p2 = s1 / max(n1, 1), s2 / max(n2, 1)
    (l1, u1), (l2, u2) = wilson_interval(s1, n1), wilson_interval(s2, n2)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def online_episodes_by_step(tensorboard_dir: Path) -> dict[int, float]:
    """Live episodes the learner had received at each logged step (TensorBoard scalars)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[int, float] = {}
    for events in sorted(tensorboard_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if "buffers/online_episodes_added" in acc.Tags()["scalars"]:
            out.update({e.step: e.value for e in acc.Scalars("buffers/online_episodes_added")})
    return out


def _grasps_at(step: int, online: dict[int, float]) -> float:
    """Grasps the learner had trained with by ``step`` (live episodes received)."""
    logged = [s for s in online if s <= step]
    return online[max(logged)] if logged else 0.0


def _rate(grasps: dict) -> float:
    return grasps["successes"] / max(grasps["attempts"], 1)


def _curve_points(state: dict) -> list[dict[str, Any]]:
    """Intermediate models plus the final learned model of the policy table."""
    points = [dict(p) for p in state["evaluation"]["curve"]]
    result = state["evaluation"]["policies"]["learned"]
    points.append({"step": state["train"]["step"], "interval": result["interval"],
                   "rate": _rate(result["grasps"])})
    return sorted(points, key=lambda p: p["step"])


def _rolling(outcomes: list[bool], window: int) -> list[float]:
    return [sum(outcomes[max(0, i - window + 1):i + 1]) / min(i + 1, window)
            for i in range(len(outcomes))]


def plot_learning_curves(run: Path, state: dict, switch_step: int) -> Path:
    points = _curve_points(state)
    scripted = state["evaluation"]["policies"]["scripted"]
    online = online_episodes_by_step(run / "learner" / "tensorboard")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    steps = [p["step"] for p in points]
    rates = [p["rate"] for p in points]
    errors = [[p["rate"] - p["interval"][0] for p in points],
              [p["interval"][1] - p["rate"] for p in points]]
    grasps = [_grasps_at(s, online) for s in steps]
    for ax, xs, label in ((axes[0], steps, "gradient steps"),
                          (axes[1], grasps, "grasps collected and trained on")):
        ax.errorbar(xs, rates, yerr=errors, marker="o", capsize=3, label="greedy policy")
        ax.axhline(_rate(scripted["grasps"]), color="gray", linestyle="--",
                   label="scripted policy")
        ax.set_xlabel(label)
        ax.set_ylabel("test success (grasps with replacement)")
        ax.set_ylim(0, 1)
    axes[0].axvline(switch_step, color="green", linestyle=":", label="pi_noisy joins")
    axes[0].legend()
    axes[1].legend()
    collection = state["train"]["collection"]
    window = 50
    for policy in sorted({c["policy"] for c in collection}):
        index = [i + 1 for i, c in enumerate(collection) if c["policy"] == policy]
        outcomes = [c["success"] for c in collection if c["policy"] == policy]
        axes[2].plot(index, _rolling(outcomes, window), label=policy)
    axes[2].set_xlabel("collected grasps (train objects)")
    axes[2].set_ylabel(f"success label, mean of the policy's last {window}")
    axes[2].set_ylim(0, 1)
    axes[2].legend()
    fig.tight_layout()
    path = run / "figures" / "learning_curves.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def policy_filmstrips(run: Path, policies: dict[str, str], cell_config: SimCellConfig,
                      episode_config: EpisodeConfig) -> Path:
    """A few test-object episodes of every policy, one row each."""
    cell = SimCell(cell_config)
    episodes, titles = [], []
    try:
        for name, model in policies.items():
            policy = make_policy(model, seed=FILMSTRIP_SEED)
            for k in range(FILMSTRIP_EPISODES):
                episodes.append(run_episode(cell, policy, FILMSTRIP_SEED + k, episode_config))
                titles.append(f"{name} #{k}")
    finally:
        cell.close()
    path = run / "figures" / "filmstrips.png"
    filmstrip(episodes, path, titles)
    return path


def _table(policies: dict[str, dict]) -> list[str]:
    checkpoints = list(next(iter(policies.values()))["bin"])
    head = "| policy | grasps with replacement (95 % CI) | labeled | steps | " + " | ".join(
        f"bin emptying, {c.replace('_', ' ')}" for c in checkpoints) + " |"
    lines = [head, "|" + "---|" * (4 + len(checkpoints))]
    for name, r in policies.items():
        g = r["grasps"]
        low, high = r["interval"]
        rate = _rate(g)
        lines.append(
            f"| {name} | {g['successes']}/{g['attempts']} = {rate:.1%} ({low:.1%}-{high:.1%}) "
            f"| {g['labeled_successes']} | {g['mean_steps']:.1f} | "
            + " | ".join(f"{r['bin'][c]:.0%}" for c in checkpoints) + " |")
    return lines


def write_report(run: Path, config, state: dict) -> Path:
    """Write ``report.md`` and its figures into the run folder; returns the report's path."""
    evaluation = state["evaluation"]["policies"]
    train = state["train"]
    plan = config.plan
    curves = plot_learning_curves(run, state, plan.switch_step)
    films = policy_filmstrips(run, {n: r["model"] for n, r in evaluation.items()},
                              config.sim("test"), config.ablation.episode)
    s, f = evaluation["scripted"]["grasps"], evaluation["learned"]["grasps"]
    d, low, high = difference_interval(f["successes"], f["attempts"], s["successes"],
                                       s["attempts"])
    verdict = ("beats" if low > 0 else "does not beat" if high < 0 else
               "is not distinguishable from")
    timings = ", ".join(f"{k} {v['seconds']:.0f} s"
                        for k, v in state.items() if isinstance(v, dict) and "seconds" in v)
    collection = train["collection"]
    by_policy = {p: [c["success"] for c in collection if c["policy"] == p]
                 for p in sorted({c["policy"] for c in collection})}
    collected = "; ".join(f"{p}: {len(o)} episodes, success label {sum(o) / len(o):.1%}"
                          for p, o in by_policy.items())
    given = f" Given bags replayed beside them: {', '.join(config.offline_data)}." \
        if config.offline_data else ""
    lines = [
        "# QT-Opt main job report", "",
        f"Run folder `{run}`; budget `{config.budget}`, preset `{config.preset}`, "
        f"{config.num_cells} cells, engine `{config.engine}`, seed {config.seed}; ablation: "
        + ", ".join(f"{k} = {v}" for k, v in dataclasses.asdict(config.ablation).items())
        + ".", "",
        f"Phases: {timings}.", "",
        f"Collect while training (App. C, F.1): {train['episodes']} episodes on train objects "
        f"({collected}), labeled by {_label_source(config.label)}; scripted_noisy alone "
        f"until gradient step {plan.switch_step}, then {config.learned_share:.0%} pi_noisy "
        f"around the newest export; {plan.steps_per_transition:g} gradient steps per "
        f"collected transition, {train['step']} steps in all.{given}", "",
        "## Held-out test objects (Sec. 6.1)", "",
        *_table(evaluation), "",
        "Success is the simulator's ground truth (an object held above the success height); "
        "'labeled' counts the image-subtraction label of the drop test (App. D.3), what a "
        "real cell would report.", "",
        f"Does the learned Q(s, stop) tell a held object from an empty gripper? "
        f"{StopValueProbe(**state['evaluation']['stop_probe']).summary()}, from scripted "
        "episodes on test objects (0.5 is chance).", "",
        f"**The learned policy {verdict} the scripted baseline**: margin {d:+.1%} "
        f"(95 % CI {low:+.1%} to {high:+.1%}, Newcombe's method). The `2h` budget "
        "(200 attempts per policy) decides this comparison; smaller budgets show the trend.",
        "",
        "## Learning curves", "", f"![learning curves]({curves.relative_to(run)})", "",
        "Left: test success of the exported models against gradient steps; middle: against "
        "the grasps the learner had trained with; right: each collecting policy's success "
        "label over the grasps collected.", "",
        "## Episodes on test objects", "", f"![filmstrips]({films.relative_to(run)})", "",
        f"TensorBoard: `tensorboard --logdir {run / 'learner' / 'tensorboard'}`.", "",
    ]
    path = run / "report.md"
    path.write_text("\n".join(lines))
    return path


def _label_source(label: str) -> str:
    if label == "truth":
        return "the simulator's truth (object held above the success height after the lift)"
    return "image subtraction after the drop test (App. D.3)"
