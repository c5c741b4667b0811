"""A model file's archive and metadata, read without torch (a command checks a ``--model`` in
milliseconds instead of the seconds torch takes to import).

A TorchScript export (:mod:`qtopt_policy.torchscript_model`) is a zip archive whose members
carry CRC-32 checksums: ``<name>/code/...`` (the scripted network), ``<name>/data.pkl`` and
``<name>/extra/qtopt_metadata.json``. :func:`read_model_info` checks every checksum and the
metadata, so a truncated, corrupt, foreign or incompatible file is refused before anything
starts; :func:`~qtopt_policy.torchscript_model.load_model` still runs the network once.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from qtopt_policy.names import DEFAULT_TERMINATION, UNRECORDED_TERMINATION
from qtopt_policy.spec import ACTION_DIM, LOW_DIM_STATE_DIM, CameraSpec, one_line

FORMAT_VERSION = 1
METADATA_FILE = "qtopt_metadata.json"


class ModelLoadError(RuntimeError):
    """A model file that cannot serve: unreadable, corrupt, or incompatible."""


def check_metadata_format(data: dict) -> None:
    """Raise ModelLoadError unless ``data`` (a model's parsed metadata) has this format version
    and this spec's action and state sizes."""
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"model format_version {data.get('format_version')!r}: expected {FORMAT_VERSION}"
        )
    if (data.get("action_dim"), data.get("low_dim_state_dim")) != (ACTION_DIM, LOW_DIM_STATE_DIM):
        raise ModelLoadError(
            f"model action_dim {data.get('action_dim')} / low_dim_state_dim "
            f"{data.get('low_dim_state_dim')}: expected {ACTION_DIM} / {LOW_DIM_STATE_DIM}"
        )


def _damaged_member(archive: zipfile.ZipFile) -> str | None:
    """What is wrong with the first member whose data does not read back whole (CRC-32,
    local header, compressed stream), or None when every one does."""
    for info in archive.infolist():
        try:
            with archive.open(info) as member:
                while member.read(1 << 20):
                    pass
        except Exception as err:  # BadZipFile, zlib.error, EOFError, ... for a damaged member
            return f"{info.filename} fails its checksum or header check ({one_line(err)})"
    return None


@dataclass(frozen=True)
class ModelFileInfo:
    """What a command checks of a model before it starts anything."""

    path: Path
    preset: str  # the Q-network preset it was trained as
    image_size: int  # the network's input, center-cropped from the camera's frames
    camera: CameraSpec | None  # the camera it was trained with; None: not recorded
    label_source: str  # "detector" or "truth"; "": not recorded
    termination: str  # what ended the training episodes (names.TERMINATIONS); "": not recorded


def termination_for(info: ModelFileInfo | None) -> str:
    """The rule episodes of the model ``info`` describes end by unless a command is told
    otherwise: the one it records; a policy without a model (None) the main job's default."""
    if info is None:
        return DEFAULT_TERMINATION
    return info.termination or UNRECORDED_TERMINATION


def read_model_info(path: Path | str) -> ModelFileInfo:
    """The metadata of the export at ``path`` after checking its archive; raise
    ModelLoadError with the reason when it is not a whole TorchScript export of this project."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = _damaged_member(archive)
            metadata = next((n for n in names if n.endswith(f"/extra/{METADATA_FILE}")), None)
            text = archive.read(metadata).decode() if metadata and not damaged else ""
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"model file {path} is not a TorchScript archive ({err})") from err
    if damaged:
        raise ModelLoadError(f"model file {path} is corrupt: {damaged}")
    if not any("/code/" in n for n in names):
        raise ModelLoadError(f"model file {path} holds no TorchScript code (a torch.save "
                             "checkpoint?)")
    if metadata is None:
        raise ModelLoadError(f"model file {path} has no {METADATA_FILE}: not a qtopt model")
    try:
        data = json.loads(text)
        check_metadata_format(data)
        camera = data.get("camera")
        return ModelFileInfo(path=path, preset=str(data["preset"]),
                             image_size=int(data["network"]["image_size"]),
                             camera=None if camera is None else CameraSpec.from_dict(camera),
                             label_source=str(data.get("label_source", "")),
                             termination=str(data.get("termination", "")))
    except ModelLoadError as err:
        raise ModelLoadError(f"model file {path}: {err}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"model file {path} has bad metadata: {err!r}") from err
