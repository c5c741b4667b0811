"""The training worker's loop (Sec. 4.3): sample the train ring, step, publish targets,
checkpoint, export TorchScript, log to TensorBoard, and on resume continue where it stopped.

Runs against any :class:`~qtopt_learner.hub.Hub`: in the learner's own process or inside a
Ray actor. Exported models are announced through the hub (``publish_model``), so whoever
serves policies (the learner node) can forward them as ModelUpdate messages.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from qtopt_learner.checkpoint import (
    load_latest_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from qtopt_learner.fine_tuning import TrainingBalancer, on_policy_fraction
from qtopt_learner.hub import ONLINE, Hub
from qtopt_learner.learner_config import LearnerConfig
from qtopt_learner.trainer import Trainer
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model

WAIT_S = 0.02
MODEL_FILE = "model.pt"
MODELS_DIR = "models"


@dataclass(frozen=True)
class ModelAnnouncement:
    path: str
    version: int
    sha256: str
    training_step: int


def init_training_group(init_method: str, rank: int, world_size: int,
                        device: torch.device) -> None:
    """Join the DDP process group of the training workers (NCCL on GPUs, gloo on CPU)."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, init_method=init_method, rank=rank,
                                         world_size=world_size)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainingLoop:
    """Owns the :class:`Trainer`; one instance per training worker."""

    def __init__(self, config: LearnerConfig, progress: bool = True, rank: int = 0,
                 world_size: int = 1) -> None:
        """With ``world_size`` > 1 this is training worker ``rank`` of a DDP group (already
        initialized): every rank steps; rank 0 alone publishes targets, checkpoints, exports
        and logs."""
        self.config = config
        self.rank = rank
        self.progress = progress
        self.run_dir = config.run_path
        self.checkpoint_dir = self.run_dir / "checkpoints"
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        seed_everything(config.seed)
        self.trainer = Trainer(config.network, config.trainer, config.resolved_device(),
                               distributed=world_size > 1)
        self.fine_tune_start: int | None = None  # step at which fine-tuning (re)started
        self.balancer: TrainingBalancer | None = None
        self.resumed_from: Path | None = None
        self.history: list[dict[str, float]] = []
        self._last_checkpoint_step = -1
        self._resume_announced = False
        self._target = config.steps
        loaded = load_latest_checkpoint(self.checkpoint_dir)
        if loaded is not None:
            self.resumed_from, state = loaded
            self.trainer.load_state_dict(state["trainer"])
            set_rng_state(state["rng"])
            self.fine_tune_start = state.get("fine_tune_start")
            self._last_checkpoint_step = self.trainer.step
        self.start_step = self.trainer.step

    def _checkpoint(self) -> Path:
        state = {
            "trainer": self.trainer.state_dict(),
            "rng": rng_state(),
            "fine_tune_start": self.fine_tune_start,
            "config": self.config.to_json(),
        }
        self._last_checkpoint_step = self.trainer.step
        return save_checkpoint(self.checkpoint_dir, self.trainer.step, state)

    def export(self, hub: Hub) -> ModelAnnouncement:
        """TorchScript of Q_bar_1 (the policy network, Sec. 4.2) as ``models/model-<step>.pt``
        (kept, for learning curves) and ``model.pt`` (the latest); announced via the hub."""
        step = self.trainer.step
        cfg = self.config
        metadata = ModelMetadata(preset=cfg.preset, network=cfg.network, bounds=ActionBounds(),
                                 cem=cfg.updater.cem, version=step, training_step=step,
                                 camera=cfg.camera if cfg.camera.known else None,
                                 label_source=cfg.label_source)
        path = self.run_dir / MODELS_DIR / f"model-{step:09d}.pt"
        sha = export_model(self.trainer.target_1, path, metadata)
        latest = self.run_dir / MODEL_FILE
        tmp = latest.with_name(f".{latest.name}.tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)  # a second name for the same file: no second write
        os.replace(tmp, latest)
        announcement = ModelAnnouncement(str(path.resolve()), step, sha, step)
        hub.publish_model(announcement)
        return announcement

    def _drop_exports_after(self, step: int) -> None:
        """Exports newer than the checkpoint a run resumes from came from the steps it lost;
        they would pass for its latest model."""
        for path in (self.run_dir / MODELS_DIR).glob("model-*.pt"):
            if int(path.stem.split("-")[1]) > step:
                path.unlink()

    def _fine_tuning(self, hub: Hub) -> None:
        ft = self.config.fine_tuning
        if not ft.enabled:
            return
        if self.fine_tune_start is None:
            self.fine_tune_start = self.trainer.step
        if self.balancer is None:
            # From where fine-tuning started, over every online transition, those reloaded on a
            # resume included: a restarted learner takes the steps its data allows, no fewer.
            self.balancer = TrainingBalancer(ft, self.fine_tune_start, 0)
        hub.set_on_policy_fraction(on_policy_fraction(self.trainer.step - self.fine_tune_start,
                                                      ft))

    def _may_step(self, hub: Hub) -> bool:
        if self.balancer is None:
            return True
        online = int(hub.stats()[f"{ONLINE}_transitions_added"])
        return self.balancer.may_step(self.trainer.step, online)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def run(self, hub: Hub, steps: int | None = None) -> dict[str, float]:
        """Train until ``steps`` total gradient steps (default: config.steps); return a summary."""
        target = self.config.steps if steps is None else steps
        self._target = target
        trainer = self.trainer
        writer = None
        if self.leader:
            hub.publish_targets(trainer.target_snapshot())
            writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=trainer.step)
            if self.resumed_from is not None and not self._resume_announced:
                self._resume_announced = True
                self._drop_exports_after(trainer.step)
                self.export(hub)  # policies learn the resumed model before the next export
        self._fine_tuning(hub)
        bar = tqdm(total=target, initial=trainer.step, desc="train", unit="step",
                   disable=not (self.progress and self.leader), dynamic_ncols=True)
        self._window = (time.monotonic(), trainer.step)
        waited_s, waiting = 0.0, False
        try:
            while trainer.step < target and not hub.stopped():
                balanced = self._may_step(hub)
                batch = hub.sample_train(self.config.trainer.batch_size,
                                         self.config.min_train_samples) if balanced else None
                if waiting != (not balanced) and self.leader:
                    hub.report_status({"waiting_for_data": not balanced, "step": trainer.step})
                waiting = not balanced
                if batch is None:
                    time.sleep(WAIT_S)
                    waited_s += WAIT_S
                    continue
                metrics = trainer.train_step(batch)
                bar.update(1)
                if self.leader:
                    self._after_step(hub, writer, bar, metrics, waited_s)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if self.leader:
            if trainer.step > 0 and self._last_checkpoint_step != trainer.step:
                self._checkpoint()
                self.export(hub)
            hub.report_status({"step": trainer.step, "finished": trainer.step >= target})
        return {**(self.history[-1] if self.history else {}), "step": trainer.step,
                "waited_s": waited_s}

    def _after_step(self, hub: Hub, writer: SummaryWriter, bar: tqdm,
                    metrics: dict[str, float], waited_s: float) -> None:
        """Rank 0's duties after a step: targets, logs, fine-tuning ramp, checkpoint, export."""
        cfg, step = self.config, self.trainer.step
        if step % cfg.publish_targets_every == 0:
            hub.publish_targets(self.trainer.target_snapshot())
        if step % cfg.log_every == 0:
            now = time.monotonic()
            start, start_step = self._window
            metrics["steps_per_s"] = (step - start_step) / max(now - start, 1e-9)
            self._window = (now, step)
            self._log(writer, hub, metrics, waited_s)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", q=f"{metrics['q_mean']:.2f}",
                            lag=f"{metrics['target_lag']:.0f}")
            self._fine_tuning(hub)
        if step % cfg.checkpoint_every == 0:
            self._checkpoint()
        if step % cfg.export_every == 0:
            self.export(hub)

    def _log(self, writer: SummaryWriter, hub: Hub, metrics: dict[str, float],
             waited_s: float) -> None:
        step = self.trainer.step
        stats = hub.stats()
        record = {"step": step, **metrics, **stats, "waited_s": waited_s,
                  "target_2_lag": step - self.trainer.target_2_step}
        self.history.append(record)
        hub.report_status({**metrics, "step": step, "target_steps": self._target})
        writer.add_scalar("losses/loss", metrics["loss"], step)
        for key in ("q_mean", "target_mean", "target_lag", "steps_per_s"):
            writer.add_scalar(f"charts/{key}", metrics[key], step)
        writer.add_scalar("charts/target_2_lag", record["target_2_lag"], step)
        for key in ("offline_transitions", "online_transitions", "online_episodes_added",
                    "train_size", "train_written", "train_sampled"):
            writer.add_scalar(f"buffers/{key}", stats[key], step)
        writer.add_scalar("charts/waited_s", waited_s, step)
