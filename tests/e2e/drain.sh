#!/usr/bin/env bash
# Graceful shutdown (SIGTERM) of a relay with a session in progress, drain_ms = 5000 from a relay
# config file ([timeouts] drain_ms, src/relay/config_file.cpp).
#  1. A session in progress (alice's pipe streaming slowly through bob's echo service) still
#     finishes completely while the relay drains; the relay then exits by itself (status 0),
#     before drain_ms is over.
#  2. A session longer than drain_ms is cut: the relay exits (status 0) about drain_ms after the
#     signal, and the pipe ends too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

DATA="$WORK/data"
DRAIN_MS=5000
printf '[timeouts]\ndrain_ms = %d\n' "$DRAIN_MS" >"$WORK/relay.toml"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
start_fixture echo echo

# slow_session NAME LINES: alice's pipe to bob:echo, fed by `slowcat LINES 0.25` through a FIFO;
# returns once the first line came back.
slow_session() {
  local name=$1 lines=$2
  mkfifo "$WORK/$name.fifo"
  BG_STDOUT="$WORK/$name.fifo" start_bg "$name-writer" "$PYTHON" "$FIXTURES" slowcat "$lines" 0.25
  BG_STDIN="$WORK/$name.fifo" BG_STDOUT="$WORK/$name.out" start_bg "$name" sb 120 alice pipe bob:echo
  _first_echo() {
    grep -q "^line 1$" "$WORK/$name.out" 2>/dev/null && return 0
    bg_running "$name" || fail "pipe '$name' ended early: $(cat "$WORK/$name.log")"
    return 1
  }
  wait_for 20 "the first line echoed in '$name'" _first_echo
}

# --- 1. a session in progress finishes while the relay drains --------------------------------
start_relay relay1 "$DATA" 127.0.0.1:0 --config "$WORK/relay.toml"
start_agent bob1 bob expose "echo=127.0.0.1:$FIXTURE_PORT"
slow_session drain1 12 # 3 s of streaming
signal_bg relay1 TERM
t_term=$(now)
log "SIGTERM to relay1 while session 'drain1' streams"
wait_bg drain1 30
pipe_rc=$BG_STATUS
t_pipe=$(elapsed "$t_term")
wait_bg relay1 $((DRAIN_MS / 1000 + 10))
relay_rc=$BG_STATUS
t_relay=$(elapsed "$t_term")
((pipe_rc == 0)) || fail "drain1: pipe exited with $pipe_rc: $(cat "$WORK/drain1.log")"
lines=$(grep -c "^line " "$WORK/drain1.out" || true)
((lines == 12)) || fail "drain1: $lines of 12 lines came back while the relay drained"
((relay_rc == 0)) || fail "relay1 exited with status $relay_rc"
log_has relay1 "draining" || fail "relay1 did not log its drain"
# It exits once its last session is released: well before drain_ms, soon after the pipe ended.
limit=$(awk -v p="$t_pipe" -v d=$((DRAIN_MS / 1000)) 'BEGIN { l = p + 2; if (l > d - 0.5) l = d - 0.5; print l }')
between "$t_relay" 0 "$limit" ||
  fail "relay1 took $t_relay s to exit although its only session ended after $t_pipe s"
log "FIGURE: drain: the session finished (12/12 lines) $t_pipe s after SIGTERM;" \
  "the relay exited (status 0) after $t_relay s"
stop_agent bob1

# --- 2. a session longer than drain_ms is cut --------------------------------------------------
start_relay relay2 "$DATA" 127.0.0.1:0 --config "$WORK/relay.toml"
start_agent bob2 bob expose "echo=127.0.0.1:$FIXTURE_PORT"
slow_session drain2 60 # 15 s of streaming, longer than drain_ms
signal_bg relay2 TERM
t_term=$(now)
log "SIGTERM to relay2 while session 'drain2' streams"
wait_bg relay2 $((DRAIN_MS / 1000 + 10))
relay_rc=$BG_STATUS
t_relay=$(elapsed "$t_term")
wait_bg drain2 20
pipe_rc=$BG_STATUS
t_pipe=$(elapsed "$t_term")
((relay_rc == 0)) || fail "relay2 exited with status $relay_rc"
between "$t_relay" $((DRAIN_MS / 1000)).0 $((DRAIN_MS / 1000 + 3)) ||
  fail "relay2 exited $t_relay s after SIGTERM; drain_ms is $DRAIN_MS"
lines=$(grep -c "^line " "$WORK/drain2.out" || true)
((lines < 60)) || fail "drain2: all 60 lines came back although the relay stopped"
log "FIGURE: drain timeout: relay exited (status 0) $t_relay s after SIGTERM (drain_ms $DRAIN_MS);" \
  "the pipe ended $t_pipe s after SIGTERM with exit status $pipe_rc after $lines/60 lines"
log "the pipe's last log lines: $(tail -n 2 "$WORK/drain2.log" | tr '\n' ' ')"
# docs/protocol.md §9: after the drain time the relay sends TERMINATE(RELAY_SHUTDOWN) to the rest.
if ! grep -q "RELAY_SHUTDOWN" "$WORK/drain2.log"; then
  fail "the pipe was not told RELAY_SHUTDOWN when the drain time ran out: $(cat "$WORK/drain2.log")"
fi
stop_agent bob2
log "PASS"
