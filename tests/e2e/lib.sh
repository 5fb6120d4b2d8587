# Shared helpers of the end-to-end tests. Each test script starts with
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"     # $1 switchboard-relay, $2 switchboard
#
# and gets: a fresh temp dir ($WORK: removed on success unless SB_E2E_KEEP is set, kept with its
# logs printed on failure); background processes recorded by PID and stopped in an EXIT trap (only
# those PIDs, never by name); relay, user and agent helpers; bounded waits. Everything listens on
# 127.0.0.1 only, except in network_blip.sh, whose relay also listens on its own veth link to a
# network namespace that the test makes (198.18.x.1). Every process the tests start runs under
# `timeout`, so nothing outlives a test even if the trap never runs. Exit status 77 means skipped
# (CTest SKIP_RETURN_CODE).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 PATH/TO/switchboard-relay PATH/TO/switchboard" >&2
  exit 2
fi
RELAY_BIN=$(realpath "$1")
SB_BIN=$(realpath "$2")
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES="$E2E_DIR/fixtures.py"
# The system python3 if there is one: a pyenv shim costs more than a second per start.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-e2e-$TEST_NAME.XXXXXX")
mkdir -p "$WORK/pw"

# Safety net: no process started here lives longer than this (seconds); CTest passes the test's
# TIMEOUT, so nothing outlives a test that CTest had to kill.
BG_LIMIT=${SB_E2E_LIMIT:-900}

declare -A BG_PID=()   # name -> PID of a background process started by start_bg
BG_ALL=()              # every PID start_bg recorded, in start order

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$TEST_NAME" "$*"; }

# The output of every log in $WORK (tail), for failure reports.
dump_logs() {
  local f
  for f in "$WORK"/*.log; do
    [[ -e $f ]] || continue
    echo "----- $(basename "$f") (last 80 lines) -----"
    tail -n 80 "$f"
  done
  echo "----- end of logs -----"
}

fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  exit 1
}

skip() {
  echo "SKIP [$TEST_NAME]: $*"
  exit 77
}

# True if PID is alive (not a zombie) and a child of this shell: never someone else's reused PID.
# (Bash builtins only: this runs in polling loops.)
is_our_child() {
  local stat f
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -ra f <<<"${stat##*) }" # state ppid pgrp ...
  [[ ${f[1]} == "$$" && ${f[0]} != Z ]]
}

# usecs: microseconds since the epoch (no subprocess).
usecs() {
  local t=$EPOCHREALTIME
  echo "${t/[.,]/}"
}

# kill_hard PID: SIGKILL for one of our processes. They all run under `timeout`, which makes
# itself a process group leader (PGID = its PID) with the program it runs; killing only timeout
# would orphan that program, so the signal goes to that group, which holds nothing but what we
# started.
kill_hard() {
  local pid=$1 pgid
  is_our_child "$pid" || return 0
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || pgid=
  echo "warning: PID $pid did not stop in time: SIGKILL" >&2
  if [[ $pgid == "$pid" ]]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# stop_pid PID [SIGNAL] [SECONDS]: signal one of our own background processes and wait up to
# SECONDS (default 15) for it to exit, SIGKILL after that. Returns its exit status.
stop_pid() {
  local pid=$1 sig=${2:-TERM} secs=${3:-15} i
  if is_our_child "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$(($(usecs) + secs * 1000000))
    for ((i = 0; i < secs * 10; i++)); do
      is_our_child "$pid" && (($(usecs) < deadline)) || break
      sleep 0.1
    done
    kill_hard "$pid"
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

# stop_bg NAME [SIGNAL] [SECONDS]: stop_pid for the process start_bg recorded under NAME.
stop_bg() {
  local name=$1
  shift
  [[ -n ${BG_PID[$name]:-} ]] || fail "stop_bg: no process named '$name'"
  stop_pid "${BG_PID[$name]}" "$@"
}

# On exit: SIGTERM to every process still running (newest first), 15 s for all of them to end,
# SIGKILL for the rest; then the logs if the test failed.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i pid alive
  for ((i = ${#BG_ALL[@]} - 1; i >= 0; i--)); do
    pid=${BG_ALL[$i]}
    if is_our_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  local deadline=$(($(usecs) + 15000000))
  for ((i = 0; i < 150; i++)); do
    alive=0
    for pid in "${BG_ALL[@]}"; do is_our_child "$pid" && alive=1 && break; done
    ((alive)) && (($(usecs) < deadline)) || break
    sleep 0.1
  done
  for pid in "${BG_ALL[@]}"; do kill_hard "$pid"; done
  for pid in "${BG_ALL[@]}"; do wait "$pid" 2>/dev/null || true; done
  # A test's own teardown (e.g. network namespaces), once its processes are gone.
  if declare -F test_teardown >/dev/null; then test_teardown || true; fi
  if [[ $rc -ne 0 && $rc -ne 77 ]]; then
    dump_logs >&2
    echo "FAIL [$TEST_NAME]: exit status $rc; work directory kept: $WORK" >&2
  elif [[ -n ${SB_E2E_KEEP:-} ]]; then
    echo "work directory kept (SB_E2E_KEEP): $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# start_bg NAME CMD [ARGS...]: runs CMD in the background under `timeout $BG_LIMIT`, records its
# PID as BG_PID[NAME]. stdout and stderr go to $WORK/NAME.log, unless BG_STDOUT names a file for
# stdout; stdin is BG_STDIN (default /dev/null). CMD may be one of the functions below (sb, ...).
# timeout forwards our SIGTERM to CMD and, with -k, sends SIGKILL that long after *any* signal it
# forwarded: 60 s, so that a relay has time to drain.
start_bg() {
  local name=$1
  shift
  local out=${BG_STDOUT:-$WORK/$name.log} in=${BG_STDIN:-/dev/null}
  if declare -F "$1" >/dev/null; then
    # A function: it execs its program (BG_EXEC=1), so $! is that program's PID.
    (BG_EXEC=1 "$@") >"$out" 2>>"$WORK/$name.log" <"$in" &
  else
    timeout -k 60 "$BG_LIMIT" "$@" >"$out" 2>>"$WORK/$name.log" <"$in" &
  fi
  BG_PID[$name]=$!
  BG_ALL+=("$!")
}

# signal_bg NAME SIGNAL: sends SIGNAL to background process NAME (if it is still ours) and returns.
# `timeout` forwards catchable signals to the program it runs, but SIGKILL and SIGSTOP end or stop
# timeout itself and would orphan the program: those go to timeout's process group (its PGID is
# its PID; the group holds only what it runs).
signal_bg() {
  local pid=${BG_PID[$1]:-} sig=$2 pgid
  [[ -n $pid ]] || fail "signal_bg: no process named '$1'"
  is_our_child "$pid" || return 0
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || pgid=
  if [[ ($sig == KILL || $sig == STOP) && $pgid == "$pid" ]]; then
    kill "-$sig" -- "-$pid"
  else
    kill "-$sig" "$pid"
  fi
}

# bg_running NAME: true while the process is alive.
bg_running() {
  local pid=${BG_PID[$1]:-}
  [[ -n $pid ]] && is_our_child "$pid"
}

# wait_bg NAME SECONDS: waits (bounded) for background process NAME to exit by itself and sets
# BG_STATUS to its exit status. Fails the test if it is still running after SECONDS. (Not in a
# $(...) subshell: only this shell can collect the status of its children.)
wait_bg() {
  local name=$1 secs=$2
  _bg_gone() { ! bg_running "$name"; }
  wait_for "$secs" "'$name' to exit" _bg_gone
  BG_STATUS=0
  wait "${BG_PID[$name]}" 2>/dev/null || BG_STATUS=$?
}

# wait_for SECONDS DESCRIPTION CMD [ARGS...]: polls CMD every 0.1 s until it succeeds; fails the
# test after SECONDS (bounded both in time and in the number of tries).
wait_for() {
  local secs=$1 what=$2
  shift 2
  local tries=$((secs * 10)) i
  local deadline=$(($(usecs) + secs * 1000000))
  for ((i = 0; i < tries; i++)); do
    if "$@"; then return 0; fi
    (($(usecs) < deadline)) || break
    sleep 0.1
  done
  fail "timed out after ${secs} s waiting for: $what"
}

# expect_fail NAME REGEX CMD...: CMD must exit non-zero and its stderr+stdout ($WORK/NAME.out)
# match REGEX. Sets EXPECT_RC to the exit status.
expect_fail() {
  local name=$1 re=$2
  shift 2
  local rc=0
  "$@" >"$WORK/$name.out" 2>&1 || rc=$?
  ((rc != 0)) || fail "$name: exit status 0, expected a failure; output: $(cat "$WORK/$name.out")"
  ((rc != 124 && rc != 137)) || fail "$name: timed out; output: $(cat "$WORK/$name.out")"
  grep -qE -- "$re" "$WORK/$name.out" ||
    fail "$name: exit $rc but the message does not match /$re/: $(cat "$WORK/$name.out")"
  log "ok: $name -> exit $rc: $(grep -E -m1 -- "$re" "$WORK/$name.out")"
  EXPECT_RC=$rc
}
# expect_ok NAME CMD...: CMD must exit 0; its stderr+stdout go to $WORK/NAME.out.
expect_ok() {
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>&1 || fail "$name: exit status $?; output: $(cat "$WORK/$name.out")"
}

# log_has NAME REGEX: the log of background process NAME matches REGEX (grep -E).
log_has() { grep -qE -- "$2" "$WORK/$1.log" 2>/dev/null; }

# wait_log NAME REGEX SECONDS: waits for a line in NAME's log; fails early if NAME exited.
wait_log() {
  local name=$1 re=$2 secs=${3:-20}
  _wait_log_step() {
    log_has "$name" "$re" && return 0
    bg_running "$name" || fail "'$name' exited (while waiting for /$re/ in its log)"
    return 1
  }
  wait_for "$secs" "/$re/ in $name.log" _wait_log_step
}

# A TCP port free on 127.0.0.1 right now (for programs that cannot report the port they bound).
free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# read_port_file FILE: prints the port once FILE holds one (20 s at most).
read_port_file() {
  local file=$1
  _port_ready() { [[ -s $file ]] && grep -qE '^[0-9]+$' "$file"; }
  wait_for 20 "port file $file" _port_ready
  tr -d '[:space:]' <"$file"
}

# --- relay -----------------------------------------------------------------------------------

# start_relay NAME DATA_DIR LISTEN [serve options...]: starts `switchboard-relay serve` (TLS unless
# --plaintext is among the options), waits until it listens, and sets RELAY_PORT, RELAY_ADDR,
# and SB_CONN (the connection options for switchboard: --relay and --fingerprint or --plaintext).
start_relay() {
  local name=$1 dir=$2 listen=$3
  shift 3
  local plain=0 a
  for a in "$@"; do [[ $a == --plaintext ]] && plain=1; done
  rm -f "$WORK/$name.port"
  start_bg "$name" "$RELAY_BIN" serve --data-dir "$dir" --listen "$listen" \
    --port-file "$WORK/$name.port" "$@"
  _relay_up() {
    bg_running "$name" || fail "relay '$name' exited during start-up"
    [[ -s $WORK/$name.port ]] && grep -qE '^[0-9]+$' "$WORK/$name.port"
  }
  wait_for 30 "relay '$name' to write its port file" _relay_up
  RELAY_PORT=$(tr -d '[:space:]' <"$WORK/$name.port")
  RELAY_ADDR=${listen%:*}:$RELAY_PORT
  if ((plain)); then
    SB_CONN=(--relay "$RELAY_ADDR" --plaintext)
  else
    FP=$(timeout 30 "$RELAY_BIN" fingerprint --data-dir "$dir")
    [[ $FP =~ ^([0-9A-F]{2}:){31}[0-9A-F]{2}$ ]] || fail "odd fingerprint '$FP'"
    SB_CONN=(--relay "$RELAY_ADDR" --fingerprint "$FP")
  fi
  log "relay '$name' listening on $RELAY_ADDR ($( ((plain)) && echo plaintext || echo "TLS, $FP"))"
}

# add_user DATA_DIR USER PASSWORD: adds USER to the store; the password goes to $WORK/pw/USER.
add_user() {
  local dir=$1 user=$2 pw=$3
  printf '%s\n' "$pw" >"$WORK/pw/$user"
  timeout 60 "$RELAY_BIN" user add "$user" --data-dir "$dir" <"$WORK/pw/$user" >/dev/null ||
    fail "could not add user $user"
}

# relay_user DATA_DIR ARGS...: `switchboard-relay user ARGS... --data-dir DATA_DIR`.
relay_user() {
  local dir=$1
  shift
  timeout 60 "$RELAY_BIN" user "$@" --data-dir "$dir"
}

# --- switchboard -----------------------------------------------------------------------------

# sb SECONDS USER SUBCOMMAND [ARGS...]: switchboard as USER against the current relay (SB_CONN),
# password from $WORK/pw/USER, killed after SECONDS. For start_bg, it execs (same PID).
sb() {
  local secs=$1 user=$2
  shift 2
  local argv=(timeout -k 60 "$secs" "$SB_BIN" "$@" "${SB_CONN[@]}" --user "$user"
    --password-file "$WORK/pw/$user")
  if [[ ${BG_EXEC:-0} == 1 ]]; then exec "${argv[@]}"; fi
  "${argv[@]}"
}

# call_echo CALLER PEER:SERVICE WORD: one `pipe` call to an echo service; true if WORD came back.
call_echo() {
  local out
  out=$(echo "$3" | sb 8 "$1" pipe "$2" --log-level warn 2>>"$WORK/calls.log") && [[ $out == "$3" ]]
}

# await_echo CALLER PEER:SERVICE T0 SECONDS WHAT: calls (every 0.4 s or so) until one works; fails
# the test after SECONDS. Sets ECHO_BACK_AT (seconds since T0, a now() stamp) and ECHO_CALLS.
await_echo() {
  local caller=$1 target=$2 t0=$3 secs=$4 what=$5
  ECHO_CALLS=0
  ECHO_BACK_AT=
  _await_echo_step() {
    ECHO_CALLS=$((ECHO_CALLS + 1))
    call_echo "$caller" "$target" "call-$ECHO_CALLS" && ECHO_BACK_AT=$(elapsed "$t0") && return 0
    sleep 0.4
    return 1
  }
  wait_for "$secs" "$what" _await_echo_step
}

# start_agent NAME USER SUBCOMMAND [ARGS...]: a long-running `switchboard` (expose, forward, agent)
# in the background; waits until it logged in to the relay.
start_agent() {
  local name=$1 user=$2
  shift 2
  start_bg "$name" sb "$BG_LIMIT" "$user" "$@"
  wait_log "$name" "logged in to .* as $user" 30
}

# stop_agent NAME / stop_relay NAME: SIGTERM; both programs must then end cleanly with status 0
# (the agent logs out, the relay drains).
stop_agent() { stop_bg "$1" || fail "agent '$1' exited with status $? on SIGTERM (expected 0)"; }
stop_relay() { stop_bg "$1" TERM 40 || fail "relay '$1' exited with status $? on SIGTERM (expected 0)"; }

# start_fixture NAME KIND ARGS...: a fixtures.py server writing its port to $WORK/NAME.port;
# prints nothing, sets FIXTURE_PORT.
start_fixture() {
  local name=$1 kind=$2
  shift 2
  rm -f "$WORK/$name.port"
  start_bg "$name" "$PYTHON" "$FIXTURES" "$kind" "$WORK/$name.port" "$@"
  FIXTURE_PORT=$(read_port_file "$WORK/$name.port")
}

# now: a timestamp (microseconds); elapsed T0: seconds since T0, 3 decimals (no subprocess).
now() { usecs; }
elapsed() {
  local d=$(($(usecs) - $1))
  printf '%d.%03d\n' $((d / 1000000)) $((d / 1000 % 1000))
}
# mib_per_s BYTES SECONDS
mib_per_s() { awk -v b="$1" -v s="$2" 'BEGIN { if (s < 1e-6) s = 1e-6; printf "%.1f\n", b / 1048576 / s }'; }
# between X LOW HIGH: LOW <= X <= HIGH (decimals allowed)
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }
