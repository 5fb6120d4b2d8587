#!/usr/bin/env bash
# An agent exposing a service survives a relay restart: SIGTERM the relay, keep it down for 5 s
# (SB_E2E_RELAY_DOWN_S), start it again on the same port and data dir, and without touching the
# agent a call to its service works again within 20 s. The agent reconnects with back-off (0.25 s
# doubling to 30 s, docs/protocol.md §8: after 5 s down its next attempt is due within about 3 s);
# the new relay accepts its ticket (docs/protocol.md §6), so bob's first login there is a ticket
# login and the new relay runs no password check for him (checked in its log).
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
log_has relay2 "bob/line#[0-9]+: logged in from .*\(ticket" || fail "bob did not log in to relay2 with his ticket"
! log_has relay2 "bob/line#[0-9]+: logged in from .*\(password" || fail "bob logged in to relay2 with his password"
! log_has relay2 "bob from .*: login refused" || fail "relay2 refused a login of bob's"
log "FIGURE: bob:echo works again $back_at s after relay2 listened ($attempts calls), same agent process, ticket logins only"
between "$back_at" 0 20 || fail "bob:echo came back only $back_at s after the relay restarted (limit 20 s)"

stop_agent bob
stop_relay relay2
log "PASS"
