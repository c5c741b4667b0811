# Shared by the README commands: find a suitable Python, run the idempotent setup, enter the venv.
# Sourced, not executed.
set -euo pipefail
QTOPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$QTOPT_ROOT"

find_python() {
  for candidate in "${QTOPT_PYTHON:-}" python3.11 python3.12 python3.10 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \
      'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "[setup] ERROR: need CPython 3.10, 3.11 or 3.12 on PATH (the ROS 2 Kilted wheels exist only" \
       "for these); set QTOPT_PYTHON to its path if it has another name." >&2
  return 1
}

PYTHON="$(find_python)"
"$PYTHON" scripts/setup_workspace.py
export VIRTUAL_ENV="$QTOPT_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV"
# DDS stays on this machine (qtopt_policy/ros_env.py sets the rest per process and test).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE="$QTOPT_ROOT/src/qtopt_policy/qtopt_policy/resources/fastdds_localhost.xml"
