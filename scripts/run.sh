#!/usr/bin/env bash
# The main job in one command: set-up, build, then `kdispatch compare` on the default model
# shape (8B: hidden 4096, intermediate 14336, 32 heads of 128) on every backend present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build/cli/kdispatch devices
exec build/cli/kdispatch compare "$@"
