"""Fault behaviour: kill -9 of a training run, restart, and it resumes from its last
checkpoint with the same step count; no checkpoint or model file is ever torn."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from qtopt_learner.distributed.checkpoint import checkpoints, load_latest_checkpoint
from qtopt_policy.torchscript_model import load_model

from .chain_mdp import write_bags

pytestmark = pytest.mark.slow


def _train(bags, run, steps):
    return [sys.executable, "-m", "qtopt_learner.app.cli", "train", "--offline", str(bags),
            "--run-dir", str(run), "--steps", str(steps), "--checkpoint-every", "50",
            "--export-every", "50"]


def test_kill_9_then_resume_from_the_last_checkpoint(tmp_path):
    write_bags(tmp_path / "bags", 80)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_train(tmp_path / "bags", run, 100_000), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while len(checkpoints(run / "checkpoints")) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoints written"
        time.sleep(0.1)
    time.sleep(0.37)  # somewhere between checkpoints, maybe mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for path in checkpoints(run / "checkpoints"):  # every visible checkpoint is whole
        assert torch.load(path, weights_only=False)["trainer"]["step"] == int(path.stem[5:])
    last_step = load_latest_checkpoint(run / "checkpoints")[1]["trainer"]["step"]
    assert last_step >= 100 and last_step % 50 == 0
    load_model(run / "model.pt")  # the latest model is whole too
    target = last_step + 60
    out = subprocess.run(_train(tmp_path / "bags", run, target), env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"at step {last_step}" in out.stdout, out.stdout + out.stderr[-3000:]
    assert f"reached step {target}" in out.stdout, out.stdout
    assert not list((run / "checkpoints").glob(".*"))  # a killed writer's temp file is gone
    assert load_latest_checkpoint(run / "checkpoints")[1]["trainer"]["step"] == target
    assert load_model(run / "model.pt").metadata.training_step == target
