#!/usr/bin/env bash
# README command 1: set up (idempotent) and run the main job in simulation.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
exec qtopt run "$@"
