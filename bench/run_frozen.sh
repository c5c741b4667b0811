#!/usr/bin/env bash
# Start a bench script in the background from a frozen copy of the committed tree, logging into
# its run folder, so that editing the checkout does not change a long run midway. Running it
# again on the same folder resumes with the same frozen code. The run leads its own process
# group (setsid), so `kill -TERM -- -$(cat RUN_DIR/pid)` stops it and its workers.
#   bench/run_frozen.sh RUN_DIR bench/concurrent_learning.py RUN_DIR [ARGS...]
set -euo pipefail
run=$1
script=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$run"
if [ ! -d "$run/code" ]; then
  mkdir -p "$run/code"
  git -C "$root" archive --format=tar HEAD | tar -x -C "$run/code"
  git -C "$root" rev-parse HEAD > "$run/code/COMMIT"
fi
code=$(cd "$run/code" && pwd)
paths=$(printf '%s:' "$code"/src/qtopt_policy "$code"/src/qtopt_collector "$code"/src/qtopt_learner)
cd "$root"
PYTHONPATH="$paths" setsid nohup .venv/bin/python "$code/$script" "$@" >> "$run/log.txt" 2>&1 &
echo $! > "$run/pid"
echo "started pid $(cat "$run/pid"), log $run/log.txt, code $(cat "$run/code/COMMIT")"
