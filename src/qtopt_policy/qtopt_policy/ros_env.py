"""Keep ROS 2 / DDS traffic on this machine, and give each test or run its own domain.

Every qtopt entry point, launch file and test goes through :func:`ros_environment` (or
:func:`apply_ros_environment`): ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, the shipped FastDDS
profile (shared memory + UDPv4 on 127.0.0.1 only), a ``ROS_DOMAIN_ID`` and a ``ROS_LOG_DIR``.
Domain ids are leased with an exclusive file lock, so concurrent test runs on one machine never
share a domain. Imports no rclpy: set the environment before rclpy creates a context.
"""

from __future__ import annotations

import fcntl
import os
import random
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

# Linux FastDDS port arithmetic allows ids 0-232; 0 is everyone's default, so leases avoid it.
DOMAIN_ID_RANGE = range(1, 233)
LOCK_DIR = Path(tempfile.gettempdir()) / "qtopt_ros_domains"


def fastdds_profile_path() -> Path:
    """Path of the shipped FastDDS XML profile (loopback-only transports)."""
    return Path(str(resources.files("qtopt_policy") / "resources" / "fastdds_localhost.xml"))


def ros_environment(
    domain_id: int,
    log_dir: Path | str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return ``base`` (default ``os.environ``) plus the variables that keep DDS local.

    Raises ValueError for a domain id outside ``DOMAIN_ID_RANGE`` or 0.
    """
    if domain_id != 0 and domain_id not in DOMAIN_ID_RANGE:
        raise ValueError(
            f"ROS_DOMAIN_ID {domain_id} is out of range: expected 0 or "
            f"{DOMAIN_ID_RANGE.start}-{DOMAIN_ID_RANGE.stop - 1}"
        )
    env = dict(os.environ if base is None else base)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(domain_id),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTDDS_DEFAULT_PROFILES_FILE=str(fastdds_profile_path()),
    )
    # Package look-ups (ament index) find the packages installed into this interpreter's prefix.
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    # Fast DDS would otherwise also load a DEFAULT_FASTDDS_PROFILES.xml from the working dir.
    env["SKIP_DEFAULT_XML_FILE"] = "1"
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        env["ROS_LOG_DIR"] = str(log_dir)
    return env


def apply_ros_environment(domain_id: int, log_dir: Path | str | None = None) -> None:
    """Set the local-only ROS variables in this process (call before ``rclpy.init``)."""
    os.environ.update(ros_environment(domain_id, log_dir))


@contextmanager
def lease_domain_id(lock_dir: Path = LOCK_DIR) -> Iterator[int]:
    """Hold an exclusive lock on a free ROS domain id for the duration of the block.

    The lock is an ``flock`` on ``<lock_dir>/<id>.lock``; it is released when the block exits or
    the process dies, so a crashed run never leaks its domain.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    ids = list(DOMAIN_ID_RANGE)
    start = random.SystemRandom().randrange(len(ids))
    for domain_id in ids[start:] + ids[:start]:
        fd = os.open(lock_dir / f"{domain_id}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield domain_id
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise RuntimeError(f"all ROS domain ids {DOMAIN_ID_RANGE} are leased (locks in {lock_dir})")


def package_share_directory(package: str) -> Path:
    """A package's share directory via the ament index; an unset ``AMENT_PREFIX_PATH``
    defaults to this interpreter's prefix, where the setup installs every qtopt package."""
    from ament_index_python.packages import get_package_share_directory

    os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    return Path(get_package_share_directory(package))
