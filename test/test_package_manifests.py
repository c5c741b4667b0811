"""The package.xml files declare what the code needs, so that the README's
``rosdep install --from-paths src`` + ``colcon build`` on a real ROS 2 install ends without
ImportErrors.

Each ament_python package's modules are read with ``ast`` (nothing is imported). Every absolute
import that runs (at module level or inside a function; not under ``if TYPE_CHECKING:``) other
than the standard library and the package itself is looked up in ``ROSDEP_KEYS``, one explicit
table, and its key must be an ``exec_depend`` or ``depend`` of the package; files under the
package's ``test/`` folder may use a ``test_depend`` instead. An import that is in no table fails,
naming the module and the file, so a new dependency cannot slip in silently. Conversely every
declared key must be used, and qtopt_msgs must declare the packages its interface files use.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PYTHON_PACKAGES = ("qtopt_policy", "qtopt_collector", "qtopt_learner")
RUNTIME_TAGS = ("depend", "exec_depend")

# Import name -> rosdep key (a key of rosdistro's rosdep/*.yaml, or a ROS package name).
ROSDEP_KEYS: dict[str, str] = {
    # ROS 2 packages: the key is the package name.
    "action_msgs": "action_msgs",
    "ament_index_python": "ament_index_python",
    "builtin_interfaces": "builtin_interfaces",
    "geometry_msgs": "geometry_msgs",
    "launch": "launch",
    "launch_ros": "launch_ros",
    "rcl_interfaces": "rcl_interfaces",
    "rclpy": "rclpy",
    "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs",
    "std_srvs": "std_srvs",
    "trajectory_msgs": "trajectory_msgs",
    "qtopt_msgs": "qtopt_msgs",
    "qtopt_policy": "qtopt_policy",
    "qtopt_collector": "qtopt_collector",
    # System packages (rosdep/python.yaml).
    "cv2": "python3-opencv",
    "matplotlib": "python3-matplotlib",
    "numpy": "python3-numpy",
    "pytest": "python3-pytest",
    "tqdm": "python3-tqdm",
    "yaml": "python3-yaml",
    # python3-torch is the system-package key (Debian/Ubuntu python3-torch); the older pip key
    # python3-pytorch-pip is marked for removal in python.yaml.
    "torch": "python3-torch",
    # Pip-only keys: python.yaml has no system package for these, so rosdep installs them with
    # pip (the ``-pip`` suffix is rosdistro's convention for such keys).
    "pybullet": "python3-pybullet-pip",
    "pybullet_data": "python3-pybullet-pip",  # ships inside the pybullet wheel
    "rosbags": "python3-rosbags-pip",
    "tensorboard": "python3-tensorboard-pip",
    # mcap has no key of its own; the mcap-ros2-support rule installs it as a pip dependency.
    "mcap": "mcap-ros2-support",
    "mcap_ros2": "mcap-ros2-support",
}

# Imports that deliberately have no package.xml entry, and why.
UNDECLARED: dict[str, str] = {
    "conftest": "the workspace's test helpers (conftest.py at the repository root)",
    "ray": "rosdep has no key for Ray, and an unknown key would fail the whole rosdep install; "
           "only the opt-in Ray engine (engine='ray') imports it: `pip install ray`",
    "gymnasium": "rosdep has no key for Gymnasium (rosdistro's python.yaml); only the sim "
                 "cell's Gymnasium environment imports it, and requirements/lock.txt pins it",
    "safetensors": "rosdep has no key for safetensors (rosdistro's python.yaml); the model "
                   "export writes the weights with it, and requirements/lock.txt pins it",
    "pyarrow": "only `qtopt export` (the LeRobot dataset's parquet files) imports it; "
               "requirements/lock.txt pins the version the export tests check, and no rosdep "
               "key for it has been verified against rosdistro here",
    "draccus": "rosdep has no key for draccus (rosdistro's python.yaml); the commands' config "
               "parsing (qtopt_policy.config_files) imports it, and requirements/lock.txt pins it",
    "mergedeep": "draccus's own dependency, which config_files also uses to lay a config file "
                 "over a preset; no rosdep key; requirements/lock.txt pins it",
    "lerobot": "test-only: the LeRobot load test installs lerobot into build/lerobot_reader "
               "itself (it does not install beside the pinned torch) and imports it there",
}


class _Imports(ast.NodeVisitor):
    """Collects the top-level names of absolute imports, skipping ``if TYPE_CHECKING:`` bodies."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:  # the else branch does run
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name.partition(".")[0] for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:  # relative imports stay inside the package
            self.names.add(node.module.partition(".")[0])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(source: str) -> set[str]:
    """Top-level module names a Python source imports at run time."""
    visitor = _Imports()
    visitor.visit(ast.parse(source))
    return visitor.names


def third_party_imports(package_dir: Path) -> dict[Path, set[str]]:
    """Per source file of a package, its imports other than the standard library and itself."""
    own = package_dir.name
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        if path.name == "setup.py":  # the build script, run by colcon with its own setuptools
            continue
        names = imported_modules(path.read_text(encoding="utf-8"))
        found[path] = {n for n in names if n not in sys.stdlib_module_names and n != own}
    return found


def manifest(package_dir: Path) -> dict[str, set[str]]:
    """The dependency keys of a package.xml, by tag."""
    root = ET.parse(package_dir / "package.xml").getroot()
    deps: dict[str, set[str]] = {}
    for element in root:
        if isinstance(element.tag, str) and element.tag.endswith("depend"):
            deps.setdefault(element.tag, set()).add((element.text or "").strip())
    return deps


def _declared(deps: dict[str, set[str]], tags: tuple[str, ...]) -> set[str]:
    return set().union(*(deps.get(tag, set()) for tag in tags))


def _is_test_file(package_dir: Path, path: Path) -> bool:
    return path.relative_to(package_dir).parts[0] == "test"


def undeclared_imports(package_dir: Path) -> list[str]:
    """What the package imports but its package.xml does not declare, one line per problem."""
    deps = manifest(package_dir)
    runtime = _declared(deps, RUNTIME_TAGS)
    for_tests = runtime | deps.get("test_depend", set())
    problems = []
    for path, names in third_party_imports(package_dir).items():
        where = path.relative_to(package_dir.parent)
        test_file = _is_test_file(package_dir, path)
        for name in sorted(names - UNDECLARED.keys()):
            key = ROSDEP_KEYS.get(name)
            if key is None:
                problems.append(f"{where}: imports {name!r}, which has no rosdep key in "
                                "ROSDEP_KEYS (add one, or an UNDECLARED entry saying why)")
            elif key not in (for_tests if test_file else runtime):
                tag = "test_depend" if test_file else "exec_depend"
                problems.append(f"{where}: imports {name!r}; package.xml lacks "
                                f"<{tag}>{key}</{tag}>")
    return problems


def unused_declarations(package_dir: Path) -> list[str]:
    """Declared keys that no import of the package needs (stale or misplaced entries)."""
    deps = manifest(package_dir)
    runtime_keys: set[str] = set()
    test_keys: set[str] = set()
    for path, names in third_party_imports(package_dir).items():
        keys = {ROSDEP_KEYS[n] for n in names if n in ROSDEP_KEYS}
        (test_keys if _is_test_file(package_dir, path) else runtime_keys).update(keys)
    problems = [f"<{tag}>{key}</{tag}> is imported by no module of {package_dir.name}"
                for tag in RUNTIME_TAGS for key in sorted(deps.get(tag, set()) - runtime_keys)]
    unused_for_tests = deps.get("test_depend", set()) - test_keys
    problems += [f"<test_depend>{key}</test_depend> is imported by no test of {package_dir.name}"
                 for key in sorted(unused_for_tests)]
    return problems


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_every_third_party_import_is_declared(package: str) -> None:
    problems = undeclared_imports(SRC / package)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", PYTHON_PACKAGES)
def test_every_declared_dependency_is_imported(package: str) -> None:
    problems = unused_declarations(SRC / package)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", (*PYTHON_PACKAGES, "qtopt_msgs"))
def test_test_depend_does_not_repeat_runtime_dependencies(package: str) -> None:
    # REP 140: a test_depend should not duplicate a build_depend, exec_depend or depend.
    deps = manifest(SRC / package)
    repeated = deps.get("test_depend", set()) & _declared(
        deps, ("depend", "build_depend", "exec_depend"))
    assert repeated == set()


def test_the_tables_do_not_overlap() -> None:
    assert ROSDEP_KEYS.keys() & UNDECLARED.keys() == set()


def interface_packages(msgs_dir: Path) -> set[str]:
    """Packages whose types the .msg/.srv/.action files of an interface package use."""
    used = set()
    for path in sorted(msgs_dir.glob("*/*")):
        if path.suffix not in {".msg", ".srv", ".action"}:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            field = line.partition("#")[0].split()
            if field and field[0] != "---" and "/" in field[0]:
                used.add(field[0].split("/")[0])
    return used


def test_msgs_package_declares_what_its_interfaces_use() -> None:
    msgs = SRC / "qtopt_msgs"
    deps = manifest(msgs)
    # Generated code needs an interface dependency at build and at run time.
    both = deps.get("depend", set()) | (
        deps.get("build_depend", set()) & deps.get("exec_depend", set()))
    needed = interface_packages(msgs)
    assert {"std_msgs", "sensor_msgs"} <= needed  # the parser sees the prefixed types
    if any(msgs.glob("action/*.action")):
        needed.add("action_msgs")  # rosidl generates actions on top of action_msgs
    missing = sorted(needed - both)
    assert not missing, f"qtopt_msgs/package.xml lacks <depend> for {missing}"

    cmake = (msgs / "CMakeLists.txt").read_text(encoding="utf-8")
    found = set(re.findall(r"find_package\(\s*(\w+)", cmake))
    assert found - _declared(deps, ("buildtool_depend", "build_depend", "depend")) == set()
    listed = re.search(r"DEPENDENCIES([^)]*)\)", cmake)
    assert listed is not None
    assert interface_packages(msgs) - set(listed.group(1).split()) == set()


def test_repository_ships_the_license_the_packages_declare() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "END OF TERMS AND CONDITIONS" in text
    for package in (*PYTHON_PACKAGES, "qtopt_msgs"):
        root = ET.parse(SRC / package / "package.xml").getroot()
        assert [e.text for e in root.iter("license")] == ["Apache-2.0"], package


# The checks themselves, on a made-up package: they must be able to fail.

def test_the_scan_counts_runtime_imports_and_skips_type_checking_and_relative_ones() -> None:
    source = (
        "from __future__ import annotations\n"
        "import os.path, numpy as np\n"
        "from typing import TYPE_CHECKING\n"
        "from .sibling import thing\n"
        "if TYPE_CHECKING:\n"
        "    import rclpy\n"
        "else:\n"
        "    import yaml\n"
        "def f():\n"
        "    from cv2 import imread\n"
    )
    assert imported_modules(source) == {"__future__", "os", "numpy", "typing", "yaml", "cv2"}


def test_the_check_reports_missing_unknown_and_unused_dependencies(tmp_path: Path) -> None:
    package = tmp_path / "fake_pkg"
    (package / "fake_pkg").mkdir(parents=True)
    (package / "test").mkdir()
    (package / "package.xml").write_text(
        '<package format="3"><name>fake_pkg</name>'
        "<exec_depend>python3-numpy</exec_depend><exec_depend>python3-yaml</exec_depend>"
        "<test_depend>python3-pytest</test_depend></package>")
    (package / "fake_pkg" / "core.py").write_text(
        "import json\nimport numpy\nimport fake_pkg.other\n"
        "def f():\n    import cv2\n    import not_a_known_module\n")
    (package / "test" / "test_core.py").write_text("import pytest\nimport numpy\nimport torch\n")

    problems = undeclared_imports(package)
    assert problems == [
        "fake_pkg/fake_pkg/core.py: imports 'cv2'; package.xml lacks "
        "<exec_depend>python3-opencv</exec_depend>",
        "fake_pkg/fake_pkg/core.py: imports 'not_a_known_module', which has no rosdep key in "
        "ROSDEP_KEYS (add one, or an UNDECLARED entry saying why)",
        "fake_pkg/test/test_core.py: imports 'torch'; package.xml lacks "
        "<test_depend>python3-torch</test_depend>",
    ]
    assert unused_declarations(package) == [
        "<exec_depend>python3-yaml</exec_depend> is imported by no module of fake_pkg"]
