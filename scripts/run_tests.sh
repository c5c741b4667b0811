#!/usr/bin/env bash
# README command 2: set up (idempotent), lint, and run the whole test suite.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ruff check .
exec python -m pytest "$@"
