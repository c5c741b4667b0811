"""Q-network of App. E: shape, parameter count, reuse of the image encoding."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from qtopt_policy.cem import continuous_bounds, encode_actions
from qtopt_policy.qnetwork import PRESETS, QNetwork, QNetworkConfig, parameter_count
from qtopt_policy.spec import (
    ACTION,
    ACTION_DIM,
    LOW_DIM_STATE,
    NOMINAL_HEIGHT,
    Action,
    ActionBounds,
    context_input_scale,
)


def _low_dim(gripper_closed: float, height_to_bottom: float) -> torch.Tensor:
    """One state's [1, 2] low-dim input."""
    return torch.from_numpy(LOW_DIM_STATE.encode(gripper_closed=gripper_closed,
                                                 height_to_bottom=height_to_bottom))[None]


def test_paper_preset_has_about_1_2m_parameters():
    n = parameter_count(QNetwork(PRESETS["paper"]))
    assert 1.08e6 <= n <= 1.32e6, n  # App. E: 1.2M +- 10 %


def test_paper_preset_layer_counts_follow_appendix_e():
    net = QNetwork(PRESETS["paper"])
    tower = [m for m in net.image_tower if isinstance(m, torch.nn.Conv2d)]
    head = [m for m in net.head if isinstance(m, torch.nn.Conv2d)]
    fc = [m for m in net.fc if isinstance(m, torch.nn.Linear)]
    assert (len(tower), len(head), len(fc)) == (7, 9, 2)
    assert all(m.out_channels == 64 for m in tower + head)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 16


def test_sim96_is_the_sim_network_at_96_px_with_the_same_4x4_merge():
    sim, sim96 = QNetwork(PRESETS["sim"]), QNetwork(PRESETS["sim96"])
    assert PRESETS["sim96"].image_size == 96
    assert sim.feature_side() == sim96.feature_side() == 4
    assert parameter_count(sim) == parameter_count(sim96)  # the same layers, a larger input


@pytest.mark.parametrize("preset", ["sim", "sim96", "paper"])
def test_scores_are_probabilities_for_many_actions_per_state(preset):
    cfg = PRESETS[preset]
    net = QNetwork(cfg).eval()
    images = torch.rand(2, 3, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        features = net.encode_state(images)
        q = net.score(features, torch.rand(2, 2), torch.rand(2, 5, ACTION_DIM))
    assert q.shape == (2, 5)
    assert torch.all((q > 0) & (q < 1))


def test_scoring_n_actions_equals_n_single_action_forwards():
    cfg = PRESETS["sim"]
    torch.manual_seed(0)
    net = QNetwork(cfg).eval()
    images, low = torch.rand(3, 3, 64, 64), torch.rand(3, 2)
    actions = torch.randn(3, 4, ACTION_DIM)
    with torch.no_grad():
        batched = net.score_logits(net.encode_state(images), low, actions)
        singles = torch.stack([net(images, low, actions[:, j]) for j in range(4)], dim=1)
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)


def test_actions_change_the_score():
    # Train mode: BatchNorm normalizes with batch statistics, as during training.
    torch.manual_seed(1)
    net = QNetwork(PRESETS["sim"]).train()
    with torch.no_grad():
        f = net.encode_state(torch.rand(1, 3, 64, 64))
        q = net.score(f, torch.rand(1, 2), torch.randn(1, 8, ACTION_DIM))
    assert q.std() > 0


def test_every_terminating_action_scores_as_the_canonical_stop():
    """A terminating action is not executed: its other entries must not change Q."""
    torch.manual_seed(2)
    net = QNetwork(PRESETS["sim"]).train()
    moves = [Action((0.05, -0.03, -0.08), 0.3, True, False), Action((0.0, 0.0, 0.0), 0.0, False,
                                                                    False)]
    stops = [Action(m.translation, m.rotation, m.gripper_close, True) for m in moves]
    actions = torch.from_numpy(np.stack([a.to_vector() for a in
                                         [*moves, *stops, Action.stop()]]))[None]
    with torch.no_grad():
        q = net.score(net.encode_state(torch.rand(1, 3, 64, 64)), torch.rand(1, 2), actions)[0]
    torch.testing.assert_close(q[2:], q[4].expand(3))
    assert q[0] != q[1] and q[0] != q[4]


def test_init_is_truncated_normal_with_sigma_0_01():
    net = QNetwork(PRESETS["paper"])
    w = net.head[0].weight
    assert w.abs().max() <= 0.02 + 1e-7
    assert 0.006 < w.std() < 0.01


def test_sim_context_pre_activations_start_far_above_the_bn_epsilon():
    # With sigma-0.01 weights and raw actions (a few cm), the first context layer's
    # pre-activations have a batch variance below BatchNorm's epsilon: the eps-dominated layer
    # passes almost nothing, and the trained eval-mode Q ignores the action (docs/decisions.md).
    cfg = PRESETS["sim"]
    net = QNetwork(cfg)
    gen = torch.Generator().manual_seed(0)
    n = 256  # actions drawn uniformly within the bounds, one state
    continuous = (2 * torch.rand(1, n, 4, generator=gen) - 1) * continuous_bounds(ActionBounds())
    actions = encode_actions(continuous, (torch.rand(1, n, 1, generator=gen) < 0.5).float())
    low = _low_dim(1.0, NOMINAL_HEIGHT / 2)
    seen = []
    net.context[0].register_forward_hook(lambda module, inputs, out: seen.append(out))
    with torch.no_grad():
        net.score_logits(net.encode_state(torch.rand(1, 3, 64, 64)), low, actions)
    assert seen[0].var(0).min() > 30 * cfg.bn_epsilon


def test_context_inputs_are_scaled_to_about_unit_range():
    bounds = ActionBounds()
    scale = context_input_scale(bounds)
    action, state = scale[:ACTION_DIM], scale[ACTION_DIM:]  # the action, then the low-dim state
    limits = np.array([*bounds.translation_limits(), math.sin(bounds.max_rotation)])
    np.testing.assert_allclose(np.append(ACTION.translation(action), ACTION.sin(action)) * limits,
                               1.0, rtol=1e-6)
    assert LOW_DIM_STATE.entry(state, "height_to_bottom") * NOMINAL_HEIGHT == pytest.approx(1.0)


def test_state_ablation_masks_gripper_and_height():
    cfg = QNetworkConfig(**{**PRESETS["sim"].to_dict(), "use_height": False,
                            "use_gripper_status": False, "head_convs": (6, 3)})
    net = QNetwork(cfg).eval()
    f = net.encode_state(torch.rand(1, 3, 64, 64))
    a = torch.randn(1, 3, ACTION_DIM)
    with torch.no_grad():
        q1 = net.score(f, _low_dim(0.0, 0.1), a)
        q2 = net.score(f, _low_dim(1.0, 0.3), a)
    torch.testing.assert_close(q1, q2)


def test_group_norm_scores_alike_in_training_and_inference():
    """norm="group" normalizes each sample by itself: no running statistics to go stale."""
    cfg = dataclasses.replace(PRESETS["sim"], norm="group")
    torch.manual_seed(3)
    net = QNetwork(cfg)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    images, low, actions = torch.rand(4, 3, 64, 64), torch.rand(4, 2), torch.randn(4, ACTION_DIM)
    with torch.no_grad():
        train_mode = net.train()(images, low, actions)
        eval_mode = net.eval()(images, low, actions)
        one = net(images[:1], low[:1], actions[:1])
    torch.testing.assert_close(train_mode, eval_mode)
    torch.testing.assert_close(one, eval_mode[:1])


def test_config_rejects_an_unknown_norm_and_ungroupable_channels():
    with pytest.raises(ValueError, match="norm 'layer'"):
        QNetworkConfig(norm="layer")
    with pytest.raises(ValueError, match="channels 18"):
        QNetworkConfig(channels=18, norm="group")


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = PRESETS["sim"]
    assert QNetworkConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="bogus"):
        QNetworkConfig.from_dict({"bogus": 1})
