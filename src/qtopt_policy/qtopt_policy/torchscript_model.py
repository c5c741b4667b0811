"""One TorchScript file holds everything a policy needs to run CEM (App. F.1 model updates).

The file is a frozen, scripted :class:`~qtopt_policy.qnetwork.QNetwork` (methods
``encode_state``, ``score``, ``score_logits``) plus a JSON metadata record in the archive's extra
files: format version, preset name, network config, input size, action bounds, CEM config,
model version and training step, and the provenance of its training data (camera and label
source). :func:`load_model` needs no qtopt Python class to run the network, and rejects a
corrupt or incompatible file with a :class:`ModelLoadError` that says why.

Beside each export ``X.pt`` the same weights go to ``X.safetensors`` (the network's state_dict,
with the same metadata record and the SHA-256 of ``X.pt``), for tools outside TorchScript;
:func:`load_weights` builds the network from it (docs/decisions.md, "Policy").
Files are written atomically (temporary file + rename), so a reader never sees half a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from qtopt_policy.cem import CEMConfig
from qtopt_policy.model_file import (
    FORMAT_VERSION,
    METADATA_FILE,
    ModelLoadError,
    check_metadata_format,
    read_model_info,
)
from qtopt_policy.qnetwork import QNetwork, QNetworkConfig
from qtopt_policy.spec import (
    ACTION_DIM,
    LOW_DIM_STATE_DIM,
    ActionBounds,
    CameraSpec,
    one_line,
)

EXPORTED_METHODS = ("encode_state", "score", "score_logits")
WEIGHTS_SUFFIX = ".safetensors"
TORCHSCRIPT_SHA256 = "torchscript_sha256"  # safetensors metadata: the export it was written with


@contextmanager
def _torchscript_allowed() -> Iterator[None]:
    """torch 2.13 marks TorchScript deprecated; it stays the project's model format
    (docs/decisions.md, "Policy")."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning
        )
        yield


@dataclass(frozen=True)
class ModelMetadata:
    preset: str
    network: QNetworkConfig
    bounds: ActionBounds
    cem: CEMConfig
    version: int = 0
    training_step: int = 0
    # Provenance of the training data; None and "" where unknown (files from before these).
    camera: CameraSpec | None = None
    label_source: str = ""  # "detector" (image subtraction, App. D.3) or "truth" (simulator)
    termination: str = ""  # what ended the training episodes (names.TERMINATIONS)
    format_version: int = FORMAT_VERSION

    @property
    def image_size(self) -> int:
        return self.network.image_size

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": self.format_version,
                "preset": self.preset,
                "network": self.network.to_dict(),
                "bounds": dataclasses.asdict(self.bounds),
                "cem": dataclasses.asdict(self.cem),
                "version": self.version,
                "training_step": self.training_step,
                "camera": self.camera.to_dict() if self.camera is not None else None,
                "label_source": self.label_source,
                "termination": self.termination,
                "action_dim": ACTION_DIM,
                "low_dim_state_dim": LOW_DIM_STATE_DIM,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        data = json.loads(text)
        check_metadata_format(data)
        cem = dict(data["cem"])
        if "initial_terminate_probability" in cem:
            # Files from before learned_termination: probability 0 was scripted termination.
            cem.setdefault("learned_termination", cem.pop("initial_terminate_probability") > 0)
        camera = data.get("camera")
        return cls(
            preset=data["preset"],
            network=QNetworkConfig.from_dict(data["network"]),
            bounds=ActionBounds(**data["bounds"]),
            cem=CEMConfig(**cem),
            version=int(data["version"]),
            training_step=int(data["training_step"]),
            camera=CameraSpec.from_dict(camera) if camera is not None else None,
            label_source=data.get("label_source", ""),
            termination=data.get("termination", ""),
        )


@dataclass(frozen=True)
class LoadedModel:
    module: torch.jit.ScriptModule
    metadata: ModelMetadata
    sha256: str
    path: Path


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_path(model_path: Path | str) -> Path:
    """Where the safetensors weights of the export at ``model_path`` are: ``X.pt`` ->
    ``X.safetensors``."""
    return Path(model_path).with_suffix(WEIGHTS_SUFFIX)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def export_model(network: QNetwork, path: Path | str, metadata: ModelMetadata) -> str:
    """Script, freeze and atomically write ``network`` with ``metadata``, and its weights as
    safetensors beside it (:func:`weights_path`); return the TorchScript file's SHA-256."""
    if metadata.network != network.config:
        raise ValueError("metadata.network differs from the network's own config")
    was_training = network.training
    network.eval()
    try:
        with _torchscript_allowed():
            frozen = torch.jit.freeze(
                torch.jit.script(network), preserved_attrs=list(EXPORTED_METHODS)
            )
            buffer = io.BytesIO()
            torch.jit.save(frozen, buffer, _extra_files={METADATA_FILE: metadata.to_json()})
    finally:
        network.train(was_training)
    sha = hashlib.sha256(buffer.getvalue()).hexdigest()
    weights = safetensors.torch.save(
        {name: t.detach().cpu().contiguous() for name, t in network.state_dict().items()},
        metadata={METADATA_FILE: metadata.to_json(), TORCHSCRIPT_SHA256: sha})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The weights first: an export that exists has its weights beside it.
    _write_atomically(weights_path(path), weights)
    _write_atomically(path, buffer.getvalue())
    return sha


def load_model(
    path: Path | str, device: torch.device | str = "cpu", expected_sha256: str | None = None
) -> LoadedModel:
    """Load and check a model file; raise ModelLoadError with the reason when it cannot serve."""
    path = Path(path)
    read_model_info(path)  # the archive's checksums and metadata, before torch reads it
    sha = file_sha256(path)
    if expected_sha256 and sha != expected_sha256:
        raise ModelLoadError(f"model file {path} has SHA-256 {sha}: expected {expected_sha256}")
    extra = {METADATA_FILE: ""}
    try:
        with _torchscript_allowed():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as err:  # torch raises RuntimeError/ValueError/zip errors for bad files
        raise ModelLoadError(f"model file {path} is not a TorchScript archive: "
                             f"{one_line(err)}") from err
    try:
        metadata = ModelMetadata.from_json(extra[METADATA_FILE])
    except (ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"model file {path} has bad metadata: {err}") from err
    missing = [m for m in EXPORTED_METHODS if not hasattr(module, m)]
    if missing:
        raise ModelLoadError(f"model file {path} lacks methods {missing}")
    _smoke_test(module, metadata, device, path)
    return LoadedModel(module, metadata, sha, path)


@dataclass(frozen=True)
class LoadedWeights:
    network: QNetwork  # eval mode
    metadata: ModelMetadata
    torchscript_sha256: str  # of the export written with these weights (LoadedModel.sha256)
    path: Path


def load_weights(path: Path | str, device: torch.device | str = "cpu") -> LoadedWeights:
    """The Q-network of a safetensors weights file (:func:`export_model` writes one beside each
    export), built from the network config its metadata records; raise ModelLoadError with the
    reason when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} does not exist")
    try:
        with safetensors.safe_open(path, framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:  # safetensors raises SafetensorError/OSError for damaged files
        raise ModelLoadError(f"weights file {path} is not a safetensors file: "
                             f"{one_line(err)}") from err
    if METADATA_FILE not in header:
        raise ModelLoadError(f"weights file {path} has no {METADATA_FILE}: not a qtopt model")
    try:
        metadata = ModelMetadata.from_json(header[METADATA_FILE])
    except (ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"weights file {path} has bad metadata: {err}") from err
    network = QNetwork(metadata.network)
    try:
        network.load_state_dict(tensors)
    except RuntimeError as err:
        raise ModelLoadError(f"weights file {path} does not fit its {metadata.preset!r} "
                             f"network: {one_line(err)}") from err
    return LoadedWeights(network.to(device).eval(), metadata,
                         header.get(TORCHSCRIPT_SHA256, ""), path)


def _smoke_test(module, metadata: ModelMetadata, device, path: Path) -> None:
    """One tiny forward pass, so an incompatible network fails at load, not mid-episode."""
    size = metadata.image_size
    try:
        with torch.inference_mode():
            features = module.encode_state(torch.zeros(1, 3, size, size, device=device))
            q = module.score(features, torch.zeros(1, LOW_DIM_STATE_DIM, device=device),
                             torch.zeros(1, 2, ACTION_DIM, device=device))
    except Exception as err:
        raise ModelLoadError(f"model file {path} fails a forward pass: {one_line(err)}"
                             ) from err
    if tuple(q.shape) != (1, 2) or not bool(torch.all((q >= 0) & (q <= 1))):
        raise ModelLoadError(
            f"model file {path} returned Q of shape {tuple(q.shape)}: expected (1, 2) in [0, 1]"
        )
