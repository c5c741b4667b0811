"""TorchScript export: one file, loads without the Python class, agrees with eager, and
records the provenance of its training data; the same weights as safetensors beside it."""

import dataclasses
import json
import subprocess
import sys

import pytest
import safetensors
import safetensors.torch
import torch

from qtopt_policy.cem import CEMConfig
from qtopt_policy.model_file import read_model_info
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ACTION_DIM, ActionBounds, CameraSpec
from qtopt_policy.torchscript_model import (
    ModelLoadError,
    ModelMetadata,
    export_model,
    file_sha256,
    load_model,
    load_weights,
    weights_path,
)


def _trained_like(preset: str, seed: int = 0) -> QNetwork:
    """A network whose BatchNorm statistics (paper preset) are not the identity."""
    torch.manual_seed(seed)
    cfg = PRESETS[preset]
    net = QNetwork(cfg).train()
    with torch.no_grad():
        net(torch.rand(4, 3, cfg.image_size, cfg.image_size), torch.rand(4, 2),
            torch.randn(4, ACTION_DIM))
    return net.eval()


def _metadata(preset: str, version: int = 3) -> ModelMetadata:
    return ModelMetadata(preset, PRESETS[preset], ActionBounds(), CEMConfig(), version, 1000)


@pytest.mark.parametrize("preset", ["sim", "paper"])
def test_scripted_agrees_with_eager_to_1e_5(tmp_path, preset):
    net = _trained_like(preset)
    path = tmp_path / "q.pt"
    sha = export_model(net, path, _metadata(preset))
    loaded = load_model(path, expected_sha256=sha)
    size = PRESETS[preset].image_size
    images, low = torch.rand(2, 3, size, size), torch.rand(2, 2)
    actions = torch.randn(2, 16, ACTION_DIM)
    with torch.no_grad():
        eager = net.score(net.encode_state(images), low, actions)
        scripted = loaded.module.score(loaded.module.encode_state(images), low, actions)
    torch.testing.assert_close(scripted, eager, rtol=0, atol=1e-5)
    assert loaded.metadata == _metadata(preset)


def test_loads_in_a_process_without_qtopt_classes(tmp_path):
    path = tmp_path / "q.pt"
    export_model(_trained_like("sim"), path, _metadata("sim"))
    code = (
        "import sys, torch, json\n"
        "extra = {'qtopt_metadata.json': ''}\n"
        f"m = torch.jit.load({str(path)!r}, _extra_files=extra)\n"
        "f = m.encode_state(torch.zeros(1, 3, 64, 64))\n"
        "q = m.score(f, torch.zeros(1, 2), torch.zeros(1, 4, 8))\n"
        "assert 'qtopt_policy' not in sys.modules\n"
        "print(json.loads(extra['qtopt_metadata.json'])['preset'], tuple(q.shape))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "sim (1, 4)"


def test_export_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "models" / "q.pt"
    export_model(_trained_like("sim"), path, _metadata("sim", 1))
    export_model(_trained_like("sim", 1), path, _metadata("sim", 2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["q.pt", "q.safetensors"]
    assert load_model(path).metadata.version == 2
    assert load_weights(weights_path(path)).metadata.version == 2


def test_rejects_missing_truncated_foreign_and_mismatched_files(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope.pt")
    good = tmp_path / "good.pt"
    export_model(_trained_like("sim"), good, _metadata("sim"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="not a TorchScript archive"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(foreign))
    with pytest.raises(ModelLoadError, match="no qtopt_metadata.json"):
        load_model(foreign)
    with pytest.raises(ModelLoadError, match="SHA-256"):
        load_model(good, expected_sha256="0" * 64)


def test_rejects_metadata_that_does_not_match_the_network(tmp_path):
    net = _trained_like("sim")
    with pytest.raises(ValueError, match="differs"):
        export_model(net, tmp_path / "x.pt", _metadata("paper"))


CAMERA = CameraSpec(72, 72, 48, 0.75, 0, -65, 0.05)


def test_camera_spec_round_trips_and_describes_itself():
    assert CAMERA.fov_deg == 48.0 and isinstance(CAMERA.fov_deg, float)  # ROS double params
    assert CameraSpec.from_json(CAMERA.to_json()) == CAMERA
    assert CameraSpec.from_dict(CAMERA.to_dict()) == CAMERA
    assert CAMERA.describe() == ("72x72 px (fov_deg 48, distance 0.75, yaw_deg 0, pitch_deg -65, "
                                 "target_height 0.05)")
    assert not CameraSpec().known and CameraSpec().describe() == "unknown"


def test_model_file_round_trips_camera_label_source_and_termination(tmp_path):
    meta = dataclasses.replace(_metadata("sim"), camera=CAMERA, label_source="truth",
                               termination="close")
    export_model(_trained_like("sim"), tmp_path / "q.pt", meta)
    loaded = load_model(tmp_path / "q.pt").metadata
    assert (loaded.camera, loaded.label_source, loaded.termination) == (CAMERA, "truth", "close")
    assert loaded == meta
    info = read_model_info(tmp_path / "q.pt")  # what commands check before they start
    assert (info.camera, info.label_source, info.termination) == (CAMERA, "truth", "close")


def test_older_metadata_without_provenance_still_loads():
    data = json.loads(_metadata("sim").to_json())
    del data["camera"], data["label_source"], data["termination"]
    # a file from before learned_termination replaced initial_terminate_probability
    del data["cem"]["learned_termination"]
    data["cem"]["initial_terminate_probability"] = 0.0
    old = ModelMetadata.from_json(json.dumps(data))
    assert old.camera is None and old.label_source == "" and old.termination == ""
    assert old.cem == CEMConfig(learned_termination=False)  # 0: scripted termination
    data["cem"]["initial_terminate_probability"] = 0.5
    assert ModelMetadata.from_json(json.dumps(data)).cem == CEMConfig()


@pytest.mark.parametrize("preset", ["sim", "paper"])
def test_safetensors_weights_give_the_torchscript_q_values(tmp_path, preset):
    net = _trained_like(preset)
    meta = dataclasses.replace(_metadata(preset), camera=CAMERA, label_source="truth")
    path = tmp_path / "q.pt"
    sha = export_model(net, path, meta)
    assert weights_path(path) == tmp_path / "q.safetensors"
    weights = load_weights(weights_path(path))
    assert weights.metadata == meta and weights.torchscript_sha256 == sha == file_sha256(path)
    assert not weights.network.training
    expected = net.state_dict()
    assert all(torch.equal(t, expected[k]) for k, t in weights.network.state_dict().items())
    module = load_model(path).module
    size = PRESETS[preset].image_size
    images, low = torch.rand(3, 3, size, size), torch.rand(3, 2)
    actions = torch.randn(3, 16, ACTION_DIM)
    with torch.no_grad():
        rebuilt = weights.network.score(weights.network.encode_state(images), low, actions)
        eager = net.score(net.encode_state(images), low, actions)
        scripted = module.score(module.encode_state(images), low, actions)
    assert torch.equal(rebuilt, eager)
    # Freezing folds BatchNorm into the convolutions: the TorchScript differs in rounding only.
    torch.testing.assert_close(rebuilt, scripted, rtol=0, atol=1e-5)


def test_the_weights_metadata_reads_without_qtopt(tmp_path):
    export_model(_trained_like("sim"), tmp_path / "q.pt", _metadata("sim"))
    with safetensors.safe_open(tmp_path / "q.safetensors", framework="pt") as f:
        header = f.metadata()
    record = json.loads(header["qtopt_metadata.json"])
    assert (record["preset"], record["network"]["image_size"]) == ("sim", 64)
    assert header["torchscript_sha256"] == file_sha256(tmp_path / "q.pt")


def test_load_weights_rejects_missing_damaged_foreign_and_mismatched_files(tmp_path):
    with pytest.raises(ModelLoadError, match="weights file .*nope.safetensors does not exist"):
        load_weights(tmp_path / "nope.safetensors")
    export_model(_trained_like("sim"), tmp_path / "q.pt", _metadata("sim"))
    good = tmp_path / "q.safetensors"
    (tmp_path / "truncated.safetensors").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="truncated.safetensors is not a safetensors file"):
        load_weights(tmp_path / "truncated.safetensors")
    safetensors.torch.save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(ModelLoadError, match="has no qtopt_metadata.json: not a qtopt model"):
        load_weights(tmp_path / "foreign.safetensors")
    paper = QNetwork(PRESETS["paper"]).state_dict()
    safetensors.torch.save_file(paper, tmp_path / "mixed.safetensors",
                                metadata={"qtopt_metadata.json": _metadata("sim").to_json()})
    with pytest.raises(ModelLoadError, match="mixed.safetensors does not fit its 'sim' network"):
        load_weights(tmp_path / "mixed.safetensors")
