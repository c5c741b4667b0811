"""Bellman targets against hand-computed values."""

import torch
from torch import nn

from qtopt_learner.targets import TargetConfig, bellman_targets, next_state_values
from qtopt_policy.cem_actor import CEMActor, StateBatch
from qtopt_policy.spec import ACTION, ActionBounds


def test_bellman_targets_by_hand():
    r = torch.tensor([-0.05, 0.95, -0.05])
    done = torch.tensor([False, True, False])
    v = torch.tensor([0.5, 0.9, 1.0])
    out = bellman_targets(r, done, v, gamma=0.9)
    torch.testing.assert_close(out, torch.tensor([-0.05 + 0.45, 0.95, -0.05 + 0.9]))


class LinearQ(nn.Module):
    """Q(s, a) = sigmoid(scale * a_x + bias_s): argmax at a_x = +bound, known values."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def encode_state(self, images):
        return images.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1)

    def score(self, features, low_dim, actions):
        bias = features.reshape(-1, 1)
        return torch.sigmoid(self.scale * ACTION.translation(actions)[..., 0] + bias)


def _states():
    images = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    images[1] = 255  # state bias 0 and 1 after preprocessing
    return StateBatch(images, torch.zeros(2, 2))


def test_clipped_double_q_takes_the_minimum_at_q1s_argmax():
    bounds = ActionBounds()
    q1 = CEMActor(LinearQ(40.0), bounds)
    q2 = LinearQ(10.0)  # lower at the same action
    gen = torch.Generator().manual_seed(0)
    v = next_state_values(q1, q2, _states(), TargetConfig(), generator=gen)
    # CEM drives a_x close to the bound 0.05 (clipped samples hit it exactly).
    expected_q2 = torch.sigmoid(10.0 * torch.tensor(0.05) + torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(v, expected_q2, atol=2e-3, rtol=0)
    v_double = next_state_values(q1, q2, _states(), TargetConfig(clipped_double_q=False),
                                 generator=torch.Generator().manual_seed(0))
    expected_q1 = torch.sigmoid(40.0 * torch.tensor(0.05) + torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(v_double, expected_q1, atol=5e-3, rtol=0)
    assert torch.all(v_double > v)
