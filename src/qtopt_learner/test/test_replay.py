"""Named FIFO replay of episodes: shared s', bounds, compression, weighted mixing."""

import dataclasses
import math

import numpy as np
import pytest

from qtopt_collector.episode import relabel_rewards
from qtopt_learner.distributed.bellman_updater import BellmanUpdaterConfig
from qtopt_learner.distributed.hub import HubConfig, LocalHub
from qtopt_learner.distributed.replay import EpisodeReplay, ReplayConfig, ReplayMixer
from qtopt_learner.distributed.roles import OFFLINE
from qtopt_learner.learner_config import learner_preset
from qtopt_learner.targets import TargetConfig
from qtopt_policy.episode_record import EpisodeRecord, StepRecord, Termination
from qtopt_policy.spec import LOW_DIM_STATE, Action, Observation

SIZE = 8


def make_episode(steps: int, seed: int, smooth: bool = False) -> EpisodeRecord:
    rng = np.random.default_rng(seed)

    def frame(i):
        if smooth:
            return np.full((SIZE, SIZE, 3), (seed * 10 + i) % 256, np.uint8)
        return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)

    obs = [Observation(frame(i), i >= steps // 2, 0.3 - 0.01 * i) for i in range(steps + 1)]
    records = [
        StepRecord(obs[i], Action((0.01 * i, 0.0, -0.02), 0.1, i >= steps // 2, i == steps - 1),
                   -0.05 if i < steps - 1 else 1.0, i == steps - 1, math.nan)
        for i in range(steps)
    ]
    return EpisodeRecord(f"e{seed}", "cell0", "scripted", 0, Termination.LEARNED, records,
                         obs[-1], True, True, [], seed)


def test_next_state_is_the_following_frame_and_stored_once():
    buffer = EpisodeReplay("offline")
    ep = make_episode(5, seed=1)
    buffer.add(ep)
    assert len(buffer) == 5 and buffer.episodes == 1
    assert buffer.nbytes < 6 * SIZE * SIZE * 3 + 500  # 6 frames once, not 10
    batch = buffer.sample(200, np.random.default_rng(0))
    frames = [s.observation.image for s in ep.steps] + [ep.final_observation.image]
    for img, nxt, reward, done, low, next_low, ret in zip(
        batch.images, batch.next_images, batch.rewards, batch.dones, batch.low_dim,
        batch.next_low_dim, batch.returns, strict=True
    ):
        t = next(i for i, f in enumerate(frames) if np.array_equal(f, img))
        np.testing.assert_array_equal(nxt, frames[t + 1])
        assert done == (t == 4) and reward == pytest.approx(1.0 if t == 4 else -0.05)
        # G_t = sum_k 0.9^k r_{t+k}: the penalty on each step left, then 0.9^(4-t) for success
        assert ret == pytest.approx(sum(-0.05 * 0.9**k for k in range(4 - t)) + 0.9 ** (4 - t))
        height, next_height = (LOW_DIM_STATE.entry(x, "height_to_bottom") for x in (low, next_low))
        assert height == pytest.approx(0.3 - 0.01 * t)
        assert next_height == pytest.approx(0.3 - 0.01 * (t + 1))
    assert batch.actions.shape == (200, 8) and batch.images.dtype == np.uint8


def test_fifo_eviction_by_transitions_and_bytes():
    buffer = EpisodeReplay("online", ReplayConfig(capacity_transitions=10))
    for seed in range(4):
        buffer.add(make_episode(4, seed))
    assert (buffer.episodes, len(buffer), buffer.episodes_added) == (2, 8, 4)
    newest = [s.observation.image for seed in (2, 3) for s in make_episode(4, seed).steps]
    for img in buffer.sample(100, np.random.default_rng(0)).images:
        assert any(np.array_equal(img, f) for f in newest)  # episodes 0 and 1 were evicted
    one = EpisodeReplay("x")
    one.add(make_episode(4, 0))
    by_bytes = EpisodeReplay("y", ReplayConfig(capacity_bytes=int(2.5 * one.nbytes)))
    for seed in range(5):
        by_bytes.add(make_episode(4, seed))
    assert by_bytes.episodes == 2 and by_bytes.nbytes <= 2.5 * one.nbytes


def test_png_compression_is_lossless_and_smaller_on_rendered_like_frames():
    raw, packed = EpisodeReplay("raw"), EpisodeReplay("png", ReplayConfig(compress_images=True))
    ep = make_episode(6, seed=3, smooth=True)
    raw.add(ep)
    packed.add(ep)
    assert packed.nbytes < raw.nbytes
    a = raw.sample(50, np.random.default_rng(1))
    b = packed.sample(50, np.random.default_rng(1))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.next_images, b.next_images)


def test_mixer_samples_by_weight_and_skips_empty_buffers():
    offline, online = EpisodeReplay("offline"), EpisodeReplay("online")
    for seed in range(3):
        offline.add(make_episode(5, seed))
    mixer = ReplayMixer({"offline": offline, "online": online}, {"offline": 0.5, "online": 0.5})
    batch, counts = mixer.sample(32, np.random.default_rng(0))
    assert counts == {"offline": 32} and len(batch.rewards) == 32
    online.add(make_episode(5, 9))
    mixer.weights = {"offline": 0.9, "online": 0.1}
    totals = {"offline": 0, "online": 0}
    rng = np.random.default_rng(1)
    for _ in range(200):
        _, counts = mixer.sample(32, rng)
        for k, v in counts.items():
            totals[k] += v
    assert totals["online"] / 6400 == pytest.approx(0.1, abs=0.015)


def test_terminal_fraction_oversamples_last_transitions():
    uniform = EpisodeReplay("offline")
    weighted = EpisodeReplay("offline", ReplayConfig(terminal_fraction=0.5))
    for buffer in (uniform, weighted):
        for seed in range(4):
            buffer.add(make_episode(10, seed=seed))
    share = {b: b.sample(4000, np.random.default_rng(0)).dones.mean() for b in (uniform, weighted)}
    assert share[uniform] == pytest.approx(0.1, abs=0.02)  # 1 terminal step in 10
    assert share[weighted] == pytest.approx(0.5 + 0.5 * 0.1, abs=0.03)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'offline' is empty"):
        EpisodeReplay("offline").sample(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="weights"):
        ReplayMixer({"offline": EpisodeReplay("offline")}, {"train": 1.0})
    with pytest.raises(ValueError, match="capacity_transitions -1: expected >= 1"):
        ReplayConfig(capacity_transitions=-1)
    with pytest.raises(ValueError, match="terminal_fraction 1.0"):
        ReplayConfig(terminal_fraction=1.0)
    with pytest.raises(ValueError, match="hub.online.return_gamma 0.99: expected the targets'"):
        learner_preset("sim", hub=HubConfig(online=ReplayConfig(return_gamma=0.99)),
                       updater=BellmanUpdaterConfig(target=TargetConfig(mc_lower_bound=True)))


def test_hub_relabels_recorded_rewards_for_the_discount_ablation():
    ep = make_episode(4, seed=3)  # recorded with the -0.05 step penalty, success
    as_recorded, relabeled = LocalHub(), LocalHub(HubConfig(relabel_rewards=True,
                                                            step_penalty=0.0))
    for hub in (as_recorded, relabeled):
        hub.add_episodes(OFFLINE, [ep])
    rng = np.random.default_rng(0)
    recorded = as_recorded.buffers[OFFLINE].sample(64, rng)
    discount = relabeled.buffers[OFFLINE].sample(64, np.random.default_rng(0))
    assert sorted(set(recorded.rewards.tolist())) == pytest.approx([-0.05, 1.0])
    assert set(discount.rewards.tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(discount.rewards == 1.0, recorded.rewards == 1.0)
    # The last step keeps the reward the episode's own rule gave it: here a grasp whose close
    # ended the episode at the floor, where App. D.4's height condition would have zeroed it.
    at_floor = dataclasses.replace(ep, final_observation=dataclasses.replace(
        ep.final_observation, height_to_bottom=0.015))
    assert [s.reward for s in relabel_rewards(at_floor, 0.0).steps] == [0.0, 0.0, 0.0, 1.0]
    assert [s.reward for s in relabel_rewards(at_floor, -0.05).steps] == pytest.approx(
        [-0.05, -0.05, -0.05, 1.0])
