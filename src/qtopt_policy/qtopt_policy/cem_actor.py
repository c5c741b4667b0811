"""argmax_a Q(s, a) by CEM for a batch of states (Sec. 4.2): the policy and target workhorse.

Works with the eager :class:`~qtopt_policy.qnetwork.QNetwork` and with a loaded TorchScript
module alike: both expose ``encode_state`` and ``score``. The image tower runs once per state;
all candidates of a CEM iteration go through the rest of the network in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from qtopt_policy.cem import CEMConfig, CEMNoise, CEMResult, cem_maximize, draw_noise
from qtopt_policy.qnetwork import preprocess_images
from qtopt_policy.spec import LOW_DIM_STATE, ActionBounds, Observation, center_crop


@dataclass(frozen=True)
class StateBatch:
    """States as tensors: uint8 images [B, H, W, 3] and low-dim state [B, 2] laid out by
    ``spec.LOW_DIM_STATE``. Built from observations, images are centre-cropped to the model's
    input size (App. D.1)."""

    images: torch.Tensor
    low_dim: torch.Tensor

    @classmethod
    def from_observations(
        cls, observations: list[Observation], image_size: int, device: torch.device | str = "cpu"
    ) -> StateBatch:
        for obs in observations:
            obs.validate(image_size)
        images = torch.from_numpy(np.stack([center_crop(o.image, image_size)
                                            for o in observations]))
        low = torch.from_numpy(LOW_DIM_STATE.encode_batch(observations))
        return cls(images.to(device), low.to(device))


class CEMActor:
    """Runs CEM against a Q-network (eager or TorchScript) on a device."""

    def __init__(
        self,
        q_network: nn.Module | torch.jit.ScriptModule,
        bounds: ActionBounds,
        config: CEMConfig = CEMConfig(),
        device: torch.device | str = "cpu",
    ) -> None:
        self.q_network = q_network
        self.bounds = bounds
        self.config = config
        self.device = torch.device(device)

    def argmax(
        self,
        states: StateBatch,
        noise: CEMNoise | None = None,
        generator: torch.Generator | None = None,
    ) -> CEMResult:
        """Best action and its Q value for every state of the batch."""
        b = states.images.shape[0]
        if noise is None:
            noise = draw_noise(b, self.config, generator)
        with torch.inference_mode():
            features = self.q_network.encode_state(preprocess_images(states.images))
            low_dim = states.low_dim
            return cem_maximize(
                lambda actions: self.q_network.score(features, low_dim, actions),
                noise.to(self.device),
                self.bounds,
                self.config,
            )


def evaluate_actions(
    q_network: nn.Module | torch.jit.ScriptModule, states: StateBatch, actions: torch.Tensor
) -> torch.Tensor:
    """Q(s_b, a_b) in [0, 1] for one given action per state: actions [B, A] -> [B]."""
    with torch.inference_mode():
        features = q_network.encode_state(preprocess_images(states.images))
        return q_network.score(features, states.low_dim, actions.unsqueeze(1)).squeeze(1)
