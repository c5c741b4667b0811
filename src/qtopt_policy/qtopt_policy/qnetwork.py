"""The grasping Q-function of QT-Opt (Kalashnikov et al. 2018, App. E, Fig. 13).

The image goes through 7 conv layers (the *image tower*); the action, gripper status and height
go through fully connected layers, are tiled over the feature map and added to it; 9 more conv
layers, 2 fully connected layers and a sigmoid give Q(s, a) in [0, 1]. BatchNorm (GroupNorm in
the ``sim`` preset) + ReLU after every hidden layer; weights drawn from a truncated normal with
sigma 0.01 (He-normal in the ``sim`` preset).

The tower runs once per state (:meth:`QNetwork.encode_state`); :meth:`QNetwork.score_logits`
evaluates any number of candidate actions per state against that encoding in one batched pass,
which is what makes CEM over 64 samples cheap (Sec. 4.2).

A terminating action ends the episode without being executed, so the network scores every
action whose terminate bit is set as the one canonical ``Action.stop()``: Q(s, terminate) is a
function of the state alone, and CEM cannot find terminating actions whose ignored parts score
differently (docs/decisions.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qtopt_policy.qnetwork_config import GROUP_CHANNELS, QNetworkConfig
from qtopt_policy.qnetwork_config import PRESETS as PRESETS  # re-exported
from qtopt_policy.spec import (
    ACTION,
    ACTION_DIM,
    LOW_DIM_STATE,
    LOW_DIM_STATE_DIM,
    Action,
    context_input_scale,
)


def _norm(n: int, config: QNetworkConfig, spatial: bool) -> nn.Module:
    """The normalization after a hidden layer of ``n`` channels or units (``config.norm``)."""
    eps = config.bn_epsilon
    if config.norm == "batch":
        return nn.BatchNorm2d(n, eps=eps) if spatial else nn.BatchNorm1d(n, eps=eps)
    return nn.GroupNorm(n // GROUP_CHANNELS, n, eps=eps) if spatial else nn.LayerNorm(n, eps=eps)


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, config: QNetworkConfig,
                    stride: int = 1) -> list[nn.Module]:
    """Conv ('same' size for odd kernels, ceil(in / stride) for the even first kernel)."""
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
        _norm(c_out, config, spatial=True),
        nn.ReLU(inplace=True),
    ]


def _fc_norm_relu(n_in: int, n_out: int, config: QNetworkConfig) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out, bias=False), _norm(n_out, config, spatial=False),
            nn.ReLU(inplace=True)]


class QNetwork(nn.Module):
    """Q(s, a) with a reusable per-state image encoding. Inputs:

    - ``images``: float [B, 3, H, W] in [0, 1] (``preprocess_images`` converts uint8 NHWC);
    - ``low_dim``: float [B, 2] = (gripper_closed, height_to_bottom in m), the layout of
      ``spec.LOW_DIM_STATE``;
    - ``actions``: float [B, N, ACTION_DIM] in the layout of ``spec.ACTION``.
    """

    def __init__(self, config: QNetworkConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        tower: list[nn.Module] = _conv_norm_relu(3, c, config.first_kernel, config,
                                                 config.first_stride)
        tower.append(nn.MaxPool2d(config.first_pool, ceil_mode=True))
        for _ in range(config.tower_convs):
            tower += _conv_norm_relu(c, c, config.tower_kernel, config)
        tower.append(nn.MaxPool2d(config.tower_pool, ceil_mode=True))
        self.image_tower = nn.Sequential(*tower)
        self.context = nn.Sequential(
            *_fc_norm_relu(ACTION_DIM + LOW_DIM_STATE_DIM, config.context_hidden, config),
            *_fc_norm_relu(config.context_hidden, c, config),
        )
        head: list[nn.Module] = []
        for block in config.head_convs:
            for _ in range(block):
                head += _conv_norm_relu(c, c, config.head_kernel, config)
            head.append(nn.MaxPool2d(config.head_pool, ceil_mode=True))
        self.head = nn.Sequential(*head, nn.Flatten())
        side = self.feature_side()
        for _ in config.head_convs:
            side = math.ceil(side / config.head_pool)
        self.fc = nn.Sequential(*_fc_norm_relu(c * side * side, config.fc_hidden, config),
                                nn.Linear(config.fc_hidden, 1))
        mask = LOW_DIM_STATE.encode(gripper_closed=float(config.use_gripper_status),
                                    height_to_bottom=float(config.use_height))
        self.register_buffer("low_dim_mask", torch.from_numpy(mask), persistent=False)
        # Actions, gripper status and height at about unit range before the context layers
        # (translations are a few cm, the height a few dm).
        self.register_buffer("context_scale", torch.from_numpy(context_input_scale()),
                             persistent=False)
        self.register_buffer("stop_action", torch.from_numpy(Action.stop().to_vector()),
                             persistent=False)
        # TorchScript cannot call the codec: score_logits slices with this int.
        self.terminate_index = ACTION.terminate_index
        self.reset_parameters()

    def feature_side(self) -> int:
        """Side length of the image tower's output map."""
        side = math.ceil(self.config.image_size / self.config.first_stride)
        side = math.ceil(side / self.config.first_pool)
        return math.ceil(side / self.config.tower_pool)

    def reset_parameters(self) -> None:
        """App. E: truncated normal (sigma 0.01, cut at 2 sigma) weights, zero biases; or
        He-normal weights (``weight_init="fan_in"``)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.config.weight_init == "fan_in":
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.jit.export
    def encode_state(self, images: torch.Tensor) -> torch.Tensor:
        """Image tower: [B, 3, H, W] -> [B, C, h, w]; run once per state."""
        return self.image_tower(images)

    @torch.jit.export
    def score_logits(
        self, features: torch.Tensor, low_dim: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Logits of Q for N candidate actions per state: returns [B, N]."""
        b, n = actions.shape[0], actions.shape[1]
        e = self.terminate_index
        actions = torch.where(actions[:, :, e:e + 1] > 0.5, self.stop_action, actions)
        low = (low_dim * self.low_dim_mask).unsqueeze(1).expand(b, n, low_dim.shape[1])
        inputs = torch.cat([actions, low], dim=2) * self.context_scale
        context = self.context(inputs.reshape(b * n, -1))
        c, h, w = features.shape[1], features.shape[2], features.shape[3]
        merged = features.unsqueeze(1) + context.reshape(b, n, c, 1, 1)
        out = self.fc(self.head(merged.reshape(b * n, c, h, w)))
        return out.reshape(b, n)

    @torch.jit.export
    def score(
        self, features: torch.Tensor, low_dim: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Q(s, a) in [0, 1] for N candidate actions per state: returns [B, N]."""
        return torch.sigmoid(self.score_logits(features, low_dim, actions))

    def forward(
        self, images: torch.Tensor, low_dim: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Logits of Q(s, a) for one action per state: [B, A] -> [B]."""
        features = self.encode_state(images)
        return self.score_logits(features, low_dim, actions.unsqueeze(1)).squeeze(1)


def preprocess_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [0, 1]."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
