"""Learner core: losses, augmentation, train ring, trainer targets, fine-tuning schedule,
checkpoints and log replay, each against hand-computed or constructed expectations."""

import math
import threading

import numpy as np
import pytest
import torch

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_learner.augmentation import AugmentConfig, apply_augmentation, draw_augmentation
from qtopt_learner.distributed.bellman_updater import BellmanUpdater, BellmanUpdaterConfig
from qtopt_learner.distributed.checkpoint import (
    checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
)
from qtopt_learner.distributed.fine_tuning import (
    FineTuningConfig,
    TrainingBalancer,
    on_policy_fraction,
)
from qtopt_learner.distributed.hub import HubConfig, LocalHub
from qtopt_learner.distributed.log_replay import episode_files, run_log_reader, split_files
from qtopt_learner.distributed.replay import ReplayConfig
from qtopt_learner.distributed.roles import OFFLINE
from qtopt_learner.distributed.train_ring import TrainRing
from qtopt_learner.learner_config import LOSS_NAMES
from qtopt_learner.losses import LOSSES, cross_entropy_loss, squared_loss
from qtopt_learner.targets import TargetConfig
from qtopt_learner.trainer import LabeledBatch, Trainer, TrainerConfig
from qtopt_policy.cem import CEMConfig
from qtopt_policy.qnetwork import PRESETS

from .chain_mdp import episodes

SIM = PRESETS["sim"]


def test_losses_by_hand():
    logits = torch.tensor([math.log(3.0), math.log(3.0), 0.0])  # Q = 0.75, 0.75, 0.5
    targets = torch.tensor([1.0, -0.05, 0.85])  # the negative target is clipped to 0
    expected = (-math.log(0.75) - math.log(0.25) + math.log(2.0)) / 3
    assert float(cross_entropy_loss(logits, targets)) == pytest.approx(expected, rel=1e-6)
    expected_sq = ((0.75 - 1.0) ** 2 + (0.75 + 0.05) ** 2 + (0.5 - 0.85) ** 2) / 3
    assert float(squared_loss(logits, targets)) == pytest.approx(expected_sq, rel=1e-6)


def test_the_configs_loss_names_are_the_losses():
    """TrainerConfig checks its loss by name without importing torch (LOSS_NAMES)."""
    assert LOSS_NAMES == tuple(LOSSES)
    with pytest.raises(ValueError, match="loss 'l1': expected one of cross_entropy, squared"):
        TrainerConfig(loss="l1")


def test_augmentation_same_draw_for_s_and_next_s_and_centre_crop_when_off():
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (16, 72, 72, 3), dtype=torch.uint8, generator=g)
    draw = draw_augmentation(16, (72, 72), 64, AugmentConfig(), g)
    assert len(set(draw.top.tolist())) > 1 and draw.top.max() <= 8
    assert draw.brightness.abs().max() <= 0.125 and draw.contrast.min() >= 0.5
    a, b = apply_augmentation(frames, draw, 64), apply_augmentation(frames.clone(), draw, 64)
    assert torch.equal(a, b) and a.shape == (16, 64, 64, 3) and a.dtype == torch.uint8
    off = draw_augmentation(16, (72, 72), 64, AugmentConfig(enabled=False), g)
    torch.testing.assert_close(apply_augmentation(frames, off, 64), frames[:, 4:68, 4:68])
    # a brighter draw gives a brighter image
    bright = draw_augmentation(1, (72, 72), 64, AugmentConfig(enabled=False), g)
    brighter = type(bright)(bright.top, bright.left, torch.tensor([0.1]), bright.contrast,
                            bright.saturation)
    gray = torch.full((1, 72, 72, 3), 100, dtype=torch.uint8)
    assert int(apply_augmentation(gray, brighter, 64)[0, 0, 0, 0]) == round(100 + 25.5)
    with pytest.raises(ValueError, match="contrast"):
        AugmentConfig(contrast=(1.5, 0.5))


def _labeled(n: int, start: int) -> LabeledBatch:
    return LabeledBatch(np.zeros((n, 4, 4, 3), np.uint8), np.zeros((n, 2), np.float32),
                        np.zeros((n, 8), np.float32),
                        np.arange(start, start + n, dtype=np.float32),
                        np.full(n, start, np.int64))


def test_train_ring_overwrites_oldest():
    ring = TrainRing(capacity=10)
    with pytest.raises(ValueError, match="empty"):
        ring.sample(1, np.random.default_rng(0))
    ring.add(_labeled(6, 0))
    ring.add(_labeled(6, 6))  # 0 and 1 are overwritten
    assert len(ring) == 10 and ring.written == 12
    seen = set(ring.sample(500, np.random.default_rng(0)).targets.tolist())
    assert seen == set(range(2, 12))


def test_trainer_polyak_and_lagged_target():
    torch.manual_seed(0)
    trainer = Trainer(SIM, TrainerConfig(lr=1e-2, polyak=0.9, target_lag_steps=8))
    before_target = {k: v.clone() for k, v in trainer.target_1.state_dict().items()}
    rng = np.random.default_rng(0)
    batch = LabeledBatch(rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
                         rng.random((8, 2), dtype=np.float32),
                         rng.random((8, 8), dtype=np.float32),
                         rng.random(8, dtype=np.float32), np.zeros(8, np.int64))
    metrics = trainer.train_step(batch)
    assert metrics.target_lag == 1.0 and 0 < metrics.q_mean < 1
    online = trainer.online.state_dict()
    for name, value in trainer.target_1.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.9 * before_target[name] + 0.1 * online[name])
    for _ in range(29):
        trainer.train_step(batch)
        assert 8 <= trainer.step - trainer.target_2_step <= 10 or trainer.step < 8
    snapshot = trainer.target_snapshot()
    assert snapshot.step == 30 and trainer.target_2_step in (20, 22)


def test_fine_tuning_ramp_and_balancer():
    config = FineTuningConfig(enabled=True, ramp_steps=100, steps_per_transition=8.0)
    assert [on_policy_fraction(s, config) for s in (0, 50, 100, 500)] == pytest.approx(
        [0.01, 0.255, 0.5, 0.5])
    balancer = TrainingBalancer(config, start_step=1000, start_transitions=40)
    assert not balancer.may_step(1000, 40)  # no new on-policy data: training waits
    assert balancer.may_step(1000, 41) and balancer.allowed_steps(45) == 1040
    assert not balancer.may_step(1040, 45)
    with pytest.raises(ValueError, match="fractions"):
        FineTuningConfig(start_fraction=0.6, end_fraction=0.5)


def test_checkpoints_atomic_keep_and_skip_damaged(tmp_path, capsys):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"step": step}, keep=3)
    assert [p.name for p in checkpoints(tmp_path)] == [f"ckpt-{s:09d}.pt" for s in (20, 30, 40)]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    checkpoints(tmp_path)[-1].write_bytes(b"damaged on disk")
    path, state = load_latest_checkpoint(tmp_path)
    assert state == {"step": 30} and "unreadable" in capsys.readouterr().err


def _write_bags(path, records):
    recorder = BagRecorder(RecorderConfig(out_dir=str(path), max_episodes_per_bag=5))
    for record in records:
        recorder.write(record)


def test_log_replay_shuffles_over_readers_and_skips_corrupt_files(tmp_path, caplog):
    _write_bags(tmp_path, episodes(12))
    files = episode_files([tmp_path])
    assert len(files) == 12 and len({f.parent for f in files}) == 3
    files[3].write_bytes(files[3].read_bytes()[:200])  # truncated
    files[7].write_bytes(b"not an mcap file")
    sets = split_files(files, 2, seed=0)
    assert sorted(sets[0] + sets[1]) == files and sets[0] != files[0::2]
    hub = LocalHub(HubConfig(offline=ReplayConfig(capacity_transitions=1000)))
    counts = [run_log_reader(s, replay=hub, stop=hub, index=i, loop=False)
              for i, s in enumerate(sets)]
    assert sum(c["episodes"] for c in counts) == 10
    assert sum(c["bad_files"] for c in counts) == 2
    assert hub.replay_stats().offline.transitions == sum(c["transitions"] for c in counts)
    # one line each, naming the file and what is wrong with it
    lines = [r.message for r in caplog.records]
    assert len(lines) == 2 and not any("\n" in line for line in lines)
    assert any(str(files[3]) in line and "ends without the MCAP magic" in line for line in lines)
    assert any(str(files[7]) in line and "expected the MCAP magic" in line for line in lines)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        episode_files([tmp_path / "missing"])


def test_log_reader_loops_only_while_the_buffer_evicts(tmp_path):
    _write_bags(tmp_path, episodes(6))
    files = episode_files([tmp_path])
    small = LocalHub(HubConfig(offline=ReplayConfig(capacity_transitions=4)))
    timer = threading.Timer(1.0, small.stop)
    timer.start()
    counts = run_log_reader(files, replay=small, stop=small)
    assert counts["passes"] > 3  # evicting: it keeps cycling until stopped
    big = LocalHub(HubConfig(offline=ReplayConfig(capacity_transitions=1000)))
    threading.Timer(1.0, big.stop).start()
    # all resident: no duplicates
    assert run_log_reader(files, replay=big, stop=big)["passes"] == 1


def test_updater_labels_terminal_transitions_with_their_reward_and_records_the_lag():
    trainer = Trainer(SIM, TrainerConfig())
    for _ in range(3):
        trainer.step += 1
    hub = LocalHub()
    hub.add_episodes(OFFLINE, episodes(20))
    hub.publish_targets(trainer.target_snapshot())
    updater = BellmanUpdater(SIM, config=BellmanUpdaterConfig(
        batch_size=64, cem=CEMConfig(num_samples=16, num_elites=4)))
    assert updater.run(replay=hub, ring=hub, variables=hub, stop=hub,
                       max_batches=2) == 2 and updater.target_step == 3
    labeled = hub.train.sample(500, np.random.default_rng(0))
    assert labeled.images.shape[1:] == (64, 64, 3) and set(labeled.target_steps) == {3}
    # terminal transitions carry their reward (0 or 1); non-terminal ones -0.05 + 0.9 V, V > 0
    terminal = np.isin(labeled.targets, (0.0, 1.0))
    assert terminal.any() and (~terminal).any()
    inner = labeled.targets[~terminal]
    assert np.all((inner > -0.05) & (inner <= 0.85 + 1e-6))
    assert hub.variable_stats().updater_target_step_min == 3


def test_monte_carlo_lower_bound_raises_targets_to_the_return():
    trainer = Trainer(SIM, TrainerConfig())
    hub = LocalHub()
    hub.add_episodes(OFFLINE, episodes(20))
    hub.publish_targets(trainer.target_snapshot())
    batch = hub.sample_transitions(256)
    labels = {}
    for bound in (False, True):
        updater = BellmanUpdater(SIM, config=BellmanUpdaterConfig(
            cem=CEMConfig(num_samples=16, num_elites=4),
            target=TargetConfig(mc_lower_bound=bound)), seed=7)
        updater.load_targets(trainer.target_snapshot())
        labels[bound] = updater.label(batch).targets
    # the same seed draws the same crops and CEM samples, so only the bound differs
    np.testing.assert_allclose(labels[True], np.maximum(labels[False], batch.returns), atol=1e-6)
    assert np.any(batch.returns > labels[False] + 1e-3)  # an untrained Q lies below successes
