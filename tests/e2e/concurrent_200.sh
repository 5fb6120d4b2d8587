#!/usr/bin/env bash
# 200 concurrent sessions: alice forwards a local port to bob:echo (an asyncio echo server on bob's
# side); 200 clients connect at once, each sends 64 KiB of random data, half-closes and must get
# exactly those bytes back. Every session must succeed.
#
# Each session holds one line of alice and one of bob for its whole life, so both users get
# max-lines 1000 (default 64), and bob keeps 200 vacant lines ready: a demand that finds none of
# the callee's lines vacant fails at once with TARGET_BUSY (docs/protocol.md §4) and the forward
# drops that connection; nothing queues or retries it (with bob's default of 2 vacant lines about
# 30 of the 200 fail that way). alice keeps the default 2: her calls wait for lines she opens.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

SESSIONS=${SB_E2E_SESSIONS:-200}
SIZE=$((64 * 1024))
BOB_VACANT=${SB_E2E_BOB_VACANT:-$SESSIONS}
ALICE_VACANT=${SB_E2E_ALICE_VACANT:-2}
DATA="$WORK/data"

add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
relay_user "$DATA" max-lines alice 1000 >/dev/null
relay_user "$DATA" max-lines bob 1000 >/dev/null
start_relay relay "$DATA" 127.0.0.1:0
start_fixture echo echo
start_agent bob bob expose "echo=127.0.0.1:$FIXTURE_PORT" --vacant-lines "$BOB_VACANT"
LOCAL_PORT=$(free_port)
start_agent alice alice forward bob:echo --listen "127.0.0.1:$LOCAL_PORT" --vacant-lines "$ALICE_VACANT"
wait_log alice "forwarding 127.0.0.1:$LOCAL_PORT to bob:echo" 10

# Until both agents hold their vacant lines (the relay logs each login).
_lines_ready() {
  local b a
  b=$(grep -c "bob/line#[0-9]*: logged in" "$WORK/relay.log" || true)
  a=$(grep -c "alice/line#[0-9]*: logged in" "$WORK/relay.log" || true)
  ((b >= BOB_VACANT && a >= ALICE_VACANT))
}
wait_for 60 "$BOB_VACANT vacant lines of bob and $ALICE_VACANT of alice" _lines_ready
log "bob holds $BOB_VACANT vacant lines, alice $ALICE_VACANT"

t0=$(now)
if ! timeout 150 "$PYTHON" "$FIXTURES" clients "$LOCAL_PORT" "$SESSIONS" "$SIZE" 120 \
  >"$WORK/clients.log" 2>&1; then
  cat "$WORK/clients.log" >&2
  echo "relay demand failures: $(grep -c "demand bob:echo failed" "$WORK/relay.log" || true)" >&2
  grep -m 5 "demand bob:echo failed" "$WORK/relay.log" >&2 || true
  grep -m 5 "forward to bob:echo failed" "$WORK/alice.log" >&2 || true
  fail "not all $SESSIONS concurrent sessions succeeded"
fi
paired=$(grep -c "paired with" "$WORK/relay.log" || true)
((paired >= SESSIONS)) || fail "relay paired only $paired sessions"
log "FIGURE: $(cat "$WORK/clients.log") (wall time with client start-up $(elapsed "$t0") s)"

stop_agent alice
stop_agent bob
stop_relay relay
log "PASS"
