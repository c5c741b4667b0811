"""The policy node's core, without ROS: serve actions from a hot-swappable TorchScript model.

App. F.1: policies on the robots reload the Polyak-averaged weights periodically (every 10
minutes in the paper) and when the learner announces new ones. A new model is loaded and checked
beside the serving one and swapped in with one reference assignment, so no request waits for a
load or is dropped; a file that fails to load or does not fit (other image size, older version)
is rejected with a reason and the old model keeps serving.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qtopt_policy.cem_actor import CEMActor
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import SERVED_POLICIES
from qtopt_policy.policies import (
    EpsilonGreedyPolicy,
    GreedyCEMPolicy,
    NoiseConfig,
    Policy,
    PolicyOutput,
)
from qtopt_policy.spec import Observation
from qtopt_policy.torchscript_model import LoadedModel, ModelLoadError, file_sha256, load_model

POLICY_NAMES = SERVED_POLICIES


@dataclass(frozen=True)
class PolicyServerConfig:
    """Parameters of the policy node; ROS parameter names mirror these fields."""

    model_path: str = ""  # TorchScript file to serve at start and to re-check periodically
    default_policy: str = "greedy"  # policy for requests that name none: greedy or noisy
    reload_period_s: float = bounded(600.0, ge=0)  # App. F.1: reload every 10 minutes
    image_size: int = bounded(0, ge=0)  # required model input size; 0 takes the first model's
    noise: NoiseConfig = field(default_factory=NoiseConfig)  # App. B: pi_noisy's exploration
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    seed: int = bounded(0, ge=0)  # of the served policies' random draws (CEM, exploration)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.default_policy not in POLICY_NAMES:
            raise ValueError(
                f"default_policy {self.default_policy!r}: expected one of {POLICY_NAMES}"
            )
        resolve_device(self.device)


def resolve_device(name: str) -> torch.device:
    """The torch device a ``device`` setting names ("auto": CUDA when present); ValueError
    naming it when torch knows no such device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
                         ) from None


class NoModelError(RuntimeError):
    """A request arrived before any model was loaded."""


@dataclass(frozen=True)
class _Serving:
    model: LoadedModel
    policies: dict[str, Policy]


class PolicyServer:
    """Thread-safe: ``select`` may run while ``load`` prepares the next model elsewhere."""

    def __init__(self, config: PolicyServerConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self._serving: _Serving | None = None
        self._select_lock = threading.Lock()  # CEM runs one request at a time
        self._load_lock = threading.Lock()

    @property
    def model(self) -> LoadedModel | None:
        serving = self._serving
        return serving.model if serving else None

    @property
    def version(self) -> int:
        model = self.model
        return model.metadata.version if model else 0

    def load(self, path: str | Path, expected_sha256: str = "", version: int | None = None) -> str:
        """Load, check and swap in a model; return a description. Raises ModelLoadError."""
        with self._load_lock:
            model = load_model(path, self.device, expected_sha256 or None)
            meta = model.metadata
            if version is not None and version != meta.version:
                raise ModelLoadError(
                    f"model file {path} holds version {meta.version}: the announcement said "
                    f"{version}"
                )
            current = self.model
            required = self.config.image_size or (current.metadata.image_size if current else 0)
            if required and meta.image_size != required:
                raise ModelLoadError(
                    f"model file {path} takes {meta.image_size} px images: expected {required}"
                )
            if current and meta.version < current.metadata.version:
                raise ModelLoadError(
                    f"model file {path} has version {meta.version}, older than the serving "
                    f"{current.metadata.version}"
                )
            self._serving = _Serving(model, self._make_policies(model))
            return f"serving {path} version {meta.version} (step {meta.training_step})"

    def reload_if_changed(self) -> str | None:
        """Periodic check of ``model_path``: load it when its content changed."""
        path = Path(self.config.model_path)
        if not self.config.model_path or not path.is_file():
            return None
        current = self.model
        if current and current.path == path and file_sha256(path) == current.sha256:
            return None
        return self.load(path)

    def _make_policies(self, model: LoadedModel) -> dict[str, Policy]:
        meta = model.metadata
        actor = CEMActor(model.module, meta.bounds, meta.cem, self.device)
        greedy = GreedyCEMPolicy(actor, meta.image_size, seed=self.config.seed)
        noisy = EpsilonGreedyPolicy(
            GreedyCEMPolicy(actor, meta.image_size, seed=self.config.seed + 1),
            meta.bounds,
            self.config.noise,
            seed=self.config.seed + 2,
        )
        return {"greedy": greedy, "noisy": noisy}

    def select(self, observation: Observation, step: int, policy: str = "") -> tuple[
        PolicyOutput, int
    ]:
        """Action for one state and the version of the model that chose it. Raises
        NoModelError before the first model, ValueError (one line) for a bad request."""
        serving = self._serving
        if serving is None:
            raise NoModelError("no model loaded yet: waiting for a model file or ModelUpdate")
        name = policy or self.config.default_policy
        if name not in serving.policies:
            raise ValueError(f"policy {name!r}: expected one of {POLICY_NAMES} or ''")
        meta = serving.model.metadata
        # before any work: a frame the network cannot crop, or not from the camera it was
        # trained with, is refused with the reason
        observation.validate(meta.image_size, meta.camera)
        with self._select_lock:
            output = serving.policies[name].select_action(observation, step)
        return output, serving.model.metadata.version
