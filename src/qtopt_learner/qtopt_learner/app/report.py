"""The main job's report: report.md with the policy table (Sec. 6.1 protocols), the margin
of the learned policy over the scripted baseline with its 95 % interval, learning curves
(success vs gradient steps and vs grasps, the collecting policies' success) and episode
filmstrips as PNG, all read from the run's typed record."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qtopt_collector.episode import EpisodeConfig, run_episode  # noqa: E402
from qtopt_collector.evaluation import EvalResult, difference_interval  # noqa: E402
from qtopt_collector.filmstrip import filmstrip  # noqa: E402
from qtopt_collector.sim_cell import SimCell, SimCellConfig  # noqa: E402
from qtopt_learner.app.run_layout import RunLayout  # noqa: E402
from qtopt_learner.app.run_record import (  # noqa: E402
    EvaluationRecord,
    PolicyRecord,
    RunRecord,
    TrainRecord,
)
from qtopt_policy.policies import PolicySource  # noqa: E402

if TYPE_CHECKING:  # the main job imports the report
    from qtopt_learner.app.main_job_config import MainJobConfig

FILMSTRIP_EPISODES = 2  # per policy
FILMSTRIP_SEED = 300_000


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


def _curve_points(record: RunRecord) -> list[tuple[int, float, tuple[float, float]]]:
    """(step, rate, interval) of the intermediate models and of the final learned model of
    the policy table."""
    learned = record.evaluation.policies["learned"]
    points = [(p.step, p.grasps.rate, p.grasps.interval) for p in record.evaluation.curve]
    points.append((record.train.step, learned.grasps.rate, learned.interval))
    return sorted(points)


def _rolling(outcomes: list[bool], window: int) -> list[float]:
    return [sum(outcomes[max(0, i - window + 1):i + 1]) / min(i + 1, window)
            for i in range(len(outcomes))]


def plot_learning_curves(layout: RunLayout, record: RunRecord, switch_step: int) -> Path:
    points = _curve_points(record)
    scripted = record.evaluation.policies["scripted"].grasps
    online = online_episodes_by_step(layout.learner.tensorboard)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    steps = [step for step, _, _ in points]
    rates = [rate for _, rate, _ in points]
    errors = [[rate - low for _, rate, (low, _) in points],
              [high - rate for _, rate, (_, high) in points]]
    grasps = [_grasps_at(s, online) for s in steps]
    for ax, xs, label in ((axes[0], steps, "gradient steps"),
                          (axes[1], grasps, "grasps collected and trained on")):
        ax.errorbar(xs, rates, yerr=errors, marker="o", capsize=3, label="greedy policy")
        ax.axhline(scripted.rate, color="gray", linestyle="--", label="scripted policy")
        ax.set_xlabel(label)
        ax.set_ylabel("test success (grasps with replacement)")
        ax.set_ylim(0, 1)
    axes[0].axvline(switch_step, color="green", linestyle=":", label="pi_noisy joins")
    axes[0].legend()
    axes[1].legend()
    collection = record.train.collection
    window = 50
    for policy in sorted({c.policy for c in collection}):
        index = [i + 1 for i, c in enumerate(collection) if c.policy == policy]
        outcomes = [c.success for c in collection if c.policy == policy]
        axes[2].plot(index, _rolling(outcomes, window), label=policy)
    axes[2].set_xlabel("collected grasps (train objects)")
    axes[2].set_ylabel(f"success label, mean of the policy's last {window}")
    axes[2].set_ylim(0, 1)
    axes[2].legend()
    fig.tight_layout()
    path = layout.learning_curves
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def policy_filmstrips(path: Path, policies: dict[str, PolicySource],
                      cell_config: SimCellConfig, episode_config: EpisodeConfig) -> Path:
    """A few test-object episodes of every policy, one row each."""
    cell = SimCell(cell_config)
    episodes, titles = [], []
    try:
        for name, source in policies.items():
            policy = source.make(seed=FILMSTRIP_SEED)
            for k in range(FILMSTRIP_EPISODES):
                episodes.append(run_episode(cell, policy, FILMSTRIP_SEED + k, episode_config))
                titles.append(f"{name} #{k}")
    finally:
        cell.close()
    filmstrip(episodes, path, titles)
    return path


def policy_table(policies: dict[str, PolicyRecord]) -> list[str]:
    """The markdown table of ``policies`` under both protocols of Sec. 6.1 (no bin-emptying
    columns where no bin was emptied)."""
    checkpoints = list(next(iter(policies.values())).bin)
    head = ["policy", "grasps with replacement (95 % CI)", "labeled", "steps",
            *(f"bin emptying, {c.replace('_', ' ')}" for c in checkpoints)]
    lines = [_row(head), "|" + "---|" * len(head)]
    for name, r in policies.items():
        g = r.grasps
        low, high = r.interval
        lines.append(_row([
            name, f"{g.successes}/{g.attempts} = {g.rate:.1%} ({low:.1%}-{high:.1%})",
            str(g.labeled_successes), f"{g.mean_steps:.1f}",
            *(f"{r.bin[c]:.0%}" for c in checkpoints)]))
    return lines


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def write_report(layout: RunLayout, config: MainJobConfig, record: RunRecord) -> Path:
    """Write ``report.md`` and its figures into the run folder; returns the report's path."""
    evaluation, train, plan = record.evaluation.policies, record.train, config.plan
    run = layout.root
    curves = plot_learning_curves(layout, record, plan.switch_step)
    films = policy_filmstrips(layout.filmstrips,
                              {n: PolicySource.parse(r.model) for n, r in evaluation.items()},
                              config.sim("test"), config.ablation.episode)
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in record.timings().items())
    by_policy: dict[str, list[bool]] = {}
    for c in train.collection:
        by_policy.setdefault(c.policy, []).append(c.success)
    collected = "; ".join(f"{p}: {len(o)} episodes, success label {sum(o) / len(o):.1%}"
                          for p, o in sorted(by_policy.items()))
    given = f" Given bags replayed beside them: {', '.join(config.offline_data)}." \
        if config.offline_data else ""
    lines = [
        "# QT-Opt main job report", "",
        f"Run folder `{run}`; budget `{config.budget}`, preset `{config.preset}`, "
        f"{config.num_cells} cells, engine `{config.engine}`, seed {config.seed}; ablation: "
        + ", ".join(f"{k} = {v}" for k, v in dataclasses.asdict(config.ablation).items())
        + ".", "",
        f"Phases: {timings}.{_resumed(train)}", "",
        f"Collect while training (App. C, F.1): {train.episodes} episodes on train objects "
        f"({collected}), labeled by {_label_source(config.label)}; scripted_noisy alone "
        f"until gradient step {plan.switch_step}, then {config.learned_share:.0%} pi_noisy "
        f"around the newest export; {plan.steps_per_transition:g} gradient steps per "
        f"collected transition, {train.step} steps in all.{given}", "",
        "## Held-out test objects (Sec. 6.1)", "",
        *policy_table(evaluation), "",
        "Success is the simulator's ground truth (an object held above the success height); "
        "'labeled' counts the image-subtraction label of the drop test (App. D.3), what a "
        "real cell would report.", "",
        probe_sentences(record.evaluation), "",
        margin_summary("The learned policy", evaluation["learned"].grasps,
                       evaluation["scripted"].grasps)
        + " The `2h` budget (200 attempts per policy) decides this comparison; smaller "
        "budgets show the trend.",
        "",
        "## Learning curves", "", f"![learning curves]({curves.relative_to(run)})", "",
        "Left: test success of the exported models against gradient steps; middle: against "
        "the grasps the learner had trained with; right: each collecting policy's success "
        "label over the grasps collected.", "",
        "## Episodes on test objects", "", f"![filmstrips]({films.relative_to(run)})", "",
        f"TensorBoard: `tensorboard --logdir {layout.learner.tensorboard}`.", "",
    ]
    layout.report.write_text("\n".join(lines))
    return layout.report


def margin_summary(name: str, policy: EvalResult, scripted: EvalResult) -> str:
    """Whether ``policy`` (called ``name``) beats the scripted baseline on grasps with
    replacement: the margin and its 95 % interval (Newcombe's method)."""
    d, low, high = difference_interval(policy.successes, policy.attempts, scripted.successes,
                                       scripted.attempts)
    verdict = ("beats" if low > 0 else "does not beat" if high < 0 else
               "is not distinguishable from")
    return (f"**{name} {verdict} the scripted baseline**: margin {d:+.1%} "
            f"(95 % CI {low:+.1%} to {high:+.1%}, Newcombe's method).")


def _resumed(train: TrainRecord) -> str:
    if not train.resumed_with:
        return ""
    return (f" Training resumed with {train.resumed_with} episodes recorded; its seconds are "
            "the last run's only.")


def probe_sentences(evaluation: EvaluationRecord) -> str:
    """What the value sees, in the report's words: the stop probe (none when no scripted
    episode lifted, as under the close rule) and the close probe (none in older records)."""
    sentences = []
    if evaluation.stop_probe.states:
        sentences.append("Does the learned Q(s, stop) tell a held object from an empty gripper? "
                         f"{evaluation.stop_probe.summary()}, from scripted episodes on test "
                         "objects (0.5 is chance).")
    if evaluation.close_probe is not None:
        sentences.append("Does the learned Q of each close tell the grasps that will hold? "
                         f"{evaluation.close_probe.summary()}, scripted on test objects (0.5 "
                         "is chance).")
    return " ".join(sentences)


def _label_source(label: str) -> str:
    if label == "truth":
        return "the simulator's truth (object held above the success height after the lift)"
    return "image subtraction after the drop test (App. D.3)"
