#!/usr/bin/env bash
# Concurrent sessions through one forward, with every setting at its default: alice forwards a
# local port to bob:echo (an asyncio echo server on bob's side); SB_E2E_SESSIONS clients (1,000)
# connect at once, each sends 64 KiB of random data and must get exactly those bytes back. With
# SB_E2E_HOLD=1 every client keeps its session open until all have their echo, so all sessions
# are open at once. Every session must succeed.
#
# Neither agent is told to keep lines ready beyond its default 2: the relay holds demands while
# bob's agent opens the lines they need (NEED-LINES), and alice's forward holds the accepted
# connections while her agent opens hers (docs/protocol.md §5). Default max_lines is 2,048.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

SESSIONS=${SB_E2E_SESSIONS:-1000}
HOLD=${SB_E2E_HOLD:-1}
SIZE=$((64 * 1024))
DATA="$WORK/data"

add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
start_relay relay "$DATA" 127.0.0.1:0
start_fixture echo echo
start_agent bob bob expose "echo=127.0.0.1:$FIXTURE_PORT"
LOCAL_PORT=$(free_port)
start_agent alice alice forward bob:echo --listen "127.0.0.1:$LOCAL_PORT"
wait_log alice "forwarding 127.0.0.1:$LOCAL_PORT to bob:echo" 10
wait_log bob "logged in to" 20

t0=$(now)
hold=()
((HOLD)) && hold=(hold)
if ! timeout 200 "$PYTHON" "$FIXTURES" clients "$LOCAL_PORT" "$SESSIONS" "$SIZE" 180 "${hold[@]}" \
  >"$WORK/clients.log" 2>&1; then
  cat "$WORK/clients.log" >&2
  echo "relay demand failures: $(grep -c "demand bob:echo failed" "$WORK/relay.log" || true)" >&2
  grep -m 5 "demand bob:echo failed" "$WORK/relay.log" >&2 || true
  grep -m 5 "forward to bob:echo failed" "$WORK/alice.log" >&2 || true
  fail "not all $SESSIONS concurrent sessions succeeded"
fi
grep -q "failed" "$WORK/alice.log" && fail "alice's forward logged a failure"
log "FIGURE: $(cat "$WORK/clients.log") (wall time with client start-up $(elapsed "$t0") s)"

stop_agent alice
stop_agent bob
stop_relay relay
log "PASS"
