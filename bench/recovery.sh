#!/usr/bin/env bash
# Recovery at scale with the full count (issue 16): 200 `switchboard expose` agents, each its own
# user, all from 127.0.0.1, come back within 5 s of a relay restart (kill -9, then SIGTERM) with
# the default rate limits. Runs tests/e2e/recovery.sh (CTest runs it with 50 agents) and prints
# its FIGURE lines.
#   bench/recovery.sh [BUILD_DIR] [AGENTS]     (default build/ci, 200)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build/ci}
export SB_E2E_RECOVERY_AGENTS=${2:-200}
export SB_E2E_LIMIT=${SB_E2E_LIMIT:-900}
bash "$root/tests/e2e/recovery.sh" "$build/apps/switchboard-relay" "$build/apps/switchboard" |
  tee /dev/stderr | grep -E 'FIGURE|PASS'
