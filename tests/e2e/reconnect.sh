#!/usr/bin/env bash
# An agent exposing a service survives a relay restart: SIGTERM the relay, keep it down for 5 s
# (SB_E2E_RELAY_DOWN_S), start it again on the same port and data dir, and without touching the
# agent a call to its service works again within 20 s. The agent reconnects with back-off (0.25 s
# doubling to 30 s, docs/protocol.md §8: after 5 s down its next attempt is due within about 3 s);
# the new relay refuses its line token (BAD_CREDENTIALS), and then the agent logs in with its
# password again at once (src/agent/agent.cpp, login_refused): within 2 s, checked separately.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
start_relay relay1 "$DATA" 127.0.0.1:0
PORT=$RELAY_PORT
start_fixture echo echo
start_agent bob bob expose "echo=127.0.0.1:$FIXTURE_PORT"

call_echo alice bob:echo before-restart || fail "bob:echo does not work before the restart"
log "bob:echo works through relay1"

BOB_PID=${BG_PID[bob]}
stop_relay relay1
DOWN_S=${SB_E2E_RELAY_DOWN_S:-5}
log "relay1 stopped (SIGTERM); keeping it down for $DOWN_S s"
sleep "$DOWN_S"
bg_running bob || fail "bob's agent exited when the relay went away"
start_relay relay2 "$DATA" "127.0.0.1:$PORT"
[[ $RELAY_PORT == "$PORT" ]] || fail "relay2 listens on $RELAY_PORT, not $PORT"
t0=$(now)
# Up to 45 s, to measure; the limit of 20 s is checked below.
await_echo alice bob:echo "$t0" 45 "a call to bob:echo through the restarted relay"
back_at=$ECHO_BACK_AT
attempts=$ECHO_CALLS
[[ ${BG_PID[bob]} == "$BOB_PID" ]] && bg_running bob || fail "bob's agent is not the same process"
log_has relay2 "bob/line#[0-9]+: logged in from .*password" || fail "bob did not log in to relay2 again"
log "FIGURE: bob:echo works again $back_at s after relay2 listened ($attempts calls), same agent process"

# From the relay's log: bob's first (token) login refused, then his first password login.
ms_of() { awk '{ split(substr($1, 12), t, ":"); printf "%d\n", (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 }'; }
refused=$(grep -m1 -E "bob from .*: login refused: BAD_CREDENTIALS" "$WORK/relay2.log" | ms_of || true)
password=$(grep -m1 -E "bob/line#[0-9]+: logged in from .*\(password" "$WORK/relay2.log" | ms_of || true)
if [[ -n $refused && -n $password ]]; then
  gap_ms=$((password - refused))
  log "FIGURE: relay2 refused bob's stale line token, then bob logged in with his password $gap_ms ms later"
else
  gap_ms=0
  log "relay2 did not refuse a stale token of bob's (refused='$refused', password='$password')"
fi
between "$back_at" 0 20 || fail "bob:echo came back only $back_at s after the relay restarted (limit 20 s)"
((gap_ms <= 2000)) ||
  fail "after its stale token was refused, bob waited $gap_ms ms before logging in with the password"

stop_agent bob
stop_relay relay2
log "PASS"
