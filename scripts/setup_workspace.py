#!/usr/bin/env python3
"""Idempotent workspace setup for qtopt-ros (run by both README commands).

Stages, each skipped when the inputs it depends on are unchanged (hashes kept in
``.venv/qtopt-setup.json``):

1. check prerequisites (Python >= 3.10 with venv, cmake, C and C++ compilers);
2. create ``.venv``;
3. install ``requirements/lock.txt`` (ROS 2 Kilted wheels, torch 2.13.0+cpu from PyTorch's CPU
   wheel index when no configured index serves it, ...);
4. rewrite the ROS wheels' CMake files, which hard-code the wheel builder's Python paths;
5. build ``src/qtopt_msgs`` (ament_cmake + rosidl) and install it into the venv;
6. install the ament_python packages editable into the venv.

Only the standard library is used: this runs on the system interpreter before the venv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / "qtopt-setup.json"
LOCK = ROOT / "requirements" / "lock.txt"
REQUIREMENTS_IN = ROOT / "requirements" / "requirements.in"
MSGS_SRC = ROOT / "src" / "qtopt_msgs"
MSGS_BUILD = ROOT / "build" / "qtopt_msgs"
PYTHON_PACKAGES = ("qtopt_policy", "qtopt_collector", "qtopt_learner")
MIN_PYTHON = (3, 10)
MAX_PYTHON = (3, 12)  # the ROS 2 Kilted wheels exist for CPython 3.10-3.12
MIN_CMAKE = (3, 16)
# The lock pins torch's CPU build (+cpu), which PyPI does not serve; this is where it lives.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
LOCK_TORCH_NOTE = (
    "# torch is the CPU build (+cpu) from PyTorch's CPU wheel index (scripts/setup_workspace.py\n"
    "# installs it from there when no configured index serves it); PyPI's plain torch is the "
    "CUDA build.\n")

# Run inside the venv: rewrite the wheel builder's include paths to this interpreter's.
_FIX_CMAKE = r"""
import re, sys, sysconfig, pathlib, numpy
inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
changed = 0
for path in (pathlib.Path(sys.prefix) / "share").rglob("*.cmake"):
    text = path.read_text()
    if "/opt/python/" not in text:
        continue
    new = re.sub(r"/opt/python/[^;\"\s]*/numpy/_core/include", np_inc, text)
    new = re.sub(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+", inc, new)
    if new != text:
        path.write_text(new)
        changed += 1
print(changed)
"""

# Run inside the venv: link each package's setup.py data_files (ament index marker,
# package.xml, launch and config files) into the venv prefix, as colcon --symlink-install does;
# an editable pip install leaves them out.
_LINK_DATA_FILES = r"""
import os, sys, pathlib, runpy, setuptools
count = 0
for pkg in map(pathlib.Path, sys.argv[1:]):
    os.chdir(pkg)
    kwargs = {}
    setuptools.setup = lambda **kw: kwargs.update(kw)
    runpy.run_path("setup.py")
    for dest, files in kwargs.get("data_files", []):
        target_dir = pathlib.Path(sys.prefix) / dest
        target_dir.mkdir(parents=True, exist_ok=True)
        for f in files:
            link = target_dir / pathlib.Path(f).name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(pkg / f)
            count += 1
print(count)
"""

# Run inside the venv: pin every distribution pip installed (ROS wheels also carry inner
# egg-info records such as ``std_msgs`` that are not registry packages; they are left out).
_FREEZE = r"""
import importlib.metadata as md
rows = set()
for dist in md.distributions():
    if (dist.read_text("INSTALLER") or "").strip() != "pip":
        continue
    name, version = dist.metadata["Name"], dist.version
    if name.lower() == "pip" or name.startswith("qtopt"):
        continue
    # torch keeps its build tag (+cpu): PyPI's plain torch==X for Linux is the CUDA build.
    rows.add(f"{name}=={version if name.lower() == 'torch' else version.split('+')[0]}")
print("\n".join(sorted(rows, key=str.lower)))
"""


class SetupError(RuntimeError):
    """A prerequisite is missing or a setup step failed; the message says what to do."""


def log(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def run(cmd: list[str | Path], *, env: dict[str, str] | None = None, quiet: bool = True) -> str:
    """Run a command; on failure raise SetupError with the tail of its output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").splitlines()[-40:])
        raise SetupError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return proc.stdout or ""


def digest(*paths: Path) -> str:
    """SHA-256 over the contents and relative names of files (directories recursively)."""
    h = hashlib.sha256()
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".")[:3] if x.isdigit())


def check_prerequisites() -> None:
    """Fail with a clear message when something the setup cannot install is missing."""
    problems = []
    if not (MIN_PYTHON <= sys.version_info[:2] <= MAX_PYTHON):
        problems.append(
            f"Python {sys.version.split()[0]} found; need CPython "
            f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]}-{MAX_PYTHON[0]}.{MAX_PYTHON[1]} "
            "(the ROS 2 Kilted wheels exist only for these)."
        )
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        problems.append(
            "the Python venv module is missing: on Debian run "
            f"`apt-get install python3.{sys.version_info[1]}-venv`."
        )
    cmake = shutil.which("cmake")
    if cmake is None:
        problems.append("cmake not found: install it (Debian: `apt-get install cmake`).")
    else:
        first = run([cmake, "--version"]).splitlines()[0]
        if _version_tuple(first.split()[-1]) < MIN_CMAKE:
            problems.append(f"{first} is too old; need cmake >= 3.16.")
    if not (shutil.which("cc") or shutil.which("gcc")):
        problems.append("no C compiler (cc/gcc): install one (Debian: `apt-get install gcc`).")
    if not (shutil.which("c++") or shutil.which("g++")):
        problems.append("no C++ compiler (c++/g++): install one (Debian: `apt-get install g++`).")
    if problems:
        raise SetupError("missing prerequisites:\n  - " + "\n  - ".join(problems))


def venv_python() -> Path:
    return VENV / "bin" / "python"


def venv_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VIRTUAL_ENV=str(VENV),
        AMENT_PREFIX_PATH=str(VENV),
        PATH=f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    # The ROS wheels' bootstrapper guard leaks to children; let the venv interpreter set it.
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    return env


def load_stamp() -> dict[str, str]:
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}


def save_stamp(stamp: dict[str, str]) -> None:
    tmp = STAMP.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp, indent=2, sort_keys=True))
    tmp.replace(STAMP)


def stage(name: str, key: str, stamp: dict[str, str], action) -> None:
    """Run ``action`` unless ``stamp[name] == key``; record the key on success."""
    if stamp.get(name) == key:
        return
    start = time.monotonic()
    log(f"{name} ...")
    action()
    stamp[name] = key
    save_stamp(stamp)
    log(f"{name} done in {time.monotonic() - start:.0f} s")


def create_venv() -> None:
    if not venv_python().exists():
        run([sys.executable, "-m", "venv", VENV])


def torch_pin(requirements: Path) -> str:
    """The torch requirement of a requirements file, build tag included (``torch==X+cpu``)."""
    for line in requirements.read_text().splitlines():
        pin = line.split("#")[0].strip()
        if pin.lower().startswith("torch=="):
            return pin
    raise SetupError(f"{requirements} pins no torch: expected a line 'torch==VERSION+cpu'")


def install_torch(requirements: Path) -> None:
    """Install the pinned torch build first, from PyTorch's CPU index if no configured index
    (a local wheel folder, a mirror, pip.conf) serves it."""
    pin, env = torch_pin(requirements), venv_env()
    try:
        run([venv_python(), "-m", "pip", "install", "--no-deps", pin], env=env)
    except SetupError:
        log(f"{pin} is not on the configured indexes; taking it from {TORCH_CPU_INDEX}")
        run([venv_python(), "-m", "pip", "install", "--no-deps", "--index-url",
             TORCH_CPU_INDEX, pin], env=env)


def install_requirements() -> None:
    install_torch(LOCK)
    run([venv_python(), "-m", "pip", "install", "-r", LOCK], env=venv_env())


def fix_cmake_paths() -> None:
    changed = run([venv_python(), "-c", _FIX_CMAKE], env=venv_env()).strip()
    log(f"rewrote the wheel builder's Python paths in {changed} CMake files")


def build_msgs() -> None:
    env = venv_env()
    if MSGS_BUILD.exists():
        shutil.rmtree(MSGS_BUILD)
    run(
        [
            "cmake", "-S", MSGS_SRC, "-B", MSGS_BUILD, "-G", "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={VENV / 'bin' / 'ninja'}",
            f"-DCMAKE_PREFIX_PATH={VENV}",
            f"-DCMAKE_INSTALL_PREFIX={VENV}",
            f"-DPython3_EXECUTABLE={venv_python()}",
            "-DBUILD_TESTING=OFF",
        ],
        env=env,
    )
    run(["cmake", "--build", MSGS_BUILD, "-j", str(os.cpu_count() or 2)], env=env)
    run(["cmake", "--install", MSGS_BUILD], env=env)


def install_python_packages() -> None:
    cmd: list[str | Path] = [venv_python(), "-m", "pip", "install", "--no-deps",
                             "--no-build-isolation"]
    for pkg in PYTHON_PACKAGES:
        cmd += ["-e", ROOT / "src" / pkg]
    run(cmd, env=venv_env())
    dirs = [ROOT / "src" / pkg for pkg in PYTHON_PACKAGES]
    linked = run([venv_python(), "-c", _LINK_DATA_FILES, *dirs], env=venv_env()).strip()
    log(f"linked {linked} data files into {VENV.relative_to(ROOT)}")


def relock() -> None:
    """Install requirements.in into the venv and rewrite lock.txt from what pip installed."""
    create_venv()
    install_torch(REQUIREMENTS_IN)
    run([venv_python(), "-m", "pip", "install", "-r", REQUIREMENTS_IN], env=venv_env())
    pins = run([venv_python(), "-c", _FREEZE], env=venv_env())
    LOCK.write_text(
        "# Generated from requirements.in by `scripts/setup_workspace.py --relock`: "
        "every package pinned.\n" + LOCK_TORCH_NOTE + pins
    )
    log(f"wrote {LOCK.relative_to(ROOT)}")


@contextlib.contextmanager
def one_setup_at_a_time(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (released when the process ends, even by a crash):
    two setups at once, e.g. parallel test runs, delete each other's build folders. The one
    that waits then finds every stage done and skips it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for another setup to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def setup() -> None:
    check_prerequisites()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    stamp = load_stamp() if venv_python().exists() else {}
    create_venv()
    deps_key = digest(LOCK)
    stage("python dependencies", deps_key, stamp, install_requirements)
    stage("cmake paths", deps_key, stamp, fix_cmake_paths)
    stage("qtopt_msgs", digest(LOCK, MSGS_SRC), stamp, build_msgs)
    # Code is installed editable; what is copied or linked at install time is keyed here.
    meta = [
        ROOT / "src" / pkg / part
        for pkg in PYTHON_PACKAGES
        for part in ("setup.py", "setup.cfg", "package.xml", "resource", "launch", "config")
        if (ROOT / "src" / pkg / part).exists()
    ]
    stage("python packages", digest(*meta, LOCK), stamp, install_python_packages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relock", action="store_true",
                        help="re-resolve requirements.in and rewrite requirements/lock.txt")
    args = parser.parse_args()
    try:
        with one_setup_at_a_time(ROOT / "build" / "setup.lock"):
            relock() if args.relock else setup()
    except SetupError as err:
        print(f"[setup] ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
