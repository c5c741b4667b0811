"""The lock names the exact torch build, so a fresh install gets the wheel the venv holds.

PyPI's plain ``torch==X`` for Linux is the CUDA build; the project runs (and CI tests) the CPU
build, ``X+cpu``, which lives on PyTorch's CPU wheel index.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup_workspace():
    spec = importlib.util.spec_from_file_location("setup_workspace",
                                                  ROOT / "scripts" / "setup_workspace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_pins_the_installed_torch_build(setup_workspace) -> None:
    pin = setup_workspace.torch_pin(setup_workspace.LOCK)
    assert pin.endswith("+cpu"), pin
    assert pin == f"torch=={importlib.metadata.version('torch')}"
    assert setup_workspace.torch_pin(setup_workspace.REQUIREMENTS_IN) == pin


def test_lock_header_is_what_relock_writes(setup_workspace) -> None:
    # a hand-edited header would be lost at the next --relock
    assert setup_workspace.LOCK_TORCH_NOTE in setup_workspace.LOCK.read_text()


def test_a_lock_without_torch_is_named(setup_workspace, tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("numpy==2.4.6\n")
    with pytest.raises(setup_workspace.SetupError, match="pins no torch"):
        setup_workspace.torch_pin(lock)
