#!/usr/bin/env bash
# Recovery at scale (docs/protocol.md §6, §8): N agents (`switchboard expose`, each its own user,
# all from 127.0.0.1, so behind one address) are all logged in again within 5 s of a relay
# restart, with the default rate limits: once after `kill -9`, once after SIGTERM. Their tickets
# outlive the relay, so the new relay runs no Argon2id check for them (checked in its log: the only
# password logins are the watcher's).
#
# "Logged in again" is what a user sees: `switchboard peers` (as user `watch`, polled in a bounded
# loop) lists all N. The time runs from the start of the new relay process. The figures printed
# are FIGURE lines. SB_E2E_RECOVERY_AGENTS (default 200) sets N, SB_E2E_RECOVERY_LIMIT_S (5) the
# bound. CTest runs it with 50 agents (tests/e2e/CMakeLists.txt: adding 200 users and their first
# password logins take minutes on a busy 2-core machine); bench/recovery.sh runs the full 200.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

N=${SB_E2E_RECOVERY_AGENTS:-200}
LIMIT_S=${SB_E2E_RECOVERY_LIMIT_S:-5}
DATA="$WORK/data"

# Users u1..uN and watch, two `user add` at a time (each hashes its password with Argon2id).
add_users() {
  local i pids=()
  for ((i = 0; i <= N; i++)); do
    local user=u$i
    ((i == 0)) && user=watch
    printf '%s\n' "pw-$user" >"$WORK/pw/$user"
    timeout 60 "$RELAY_BIN" user add "$user" --data-dir "$DATA" <"$WORK/pw/$user" >/dev/null &
    pids+=("$!")
    if ((${#pids[@]} == 2)); then
      for p in "${pids[@]}"; do wait "$p" || fail "could not add a user"; done
      pids=()
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || fail "could not add a user"; done
}

# How many of u1..uN `switchboard peers` lists now (0 if it fails, e.g. the relay is not up).
PEERS_SEEN=0
count_peers() {
  local out
  out=$(sb 10 watch peers --log-level off 2>/dev/null) || out=
  PEERS_SEEN=$(cut -f1 <<<"$out" | grep -cE '^u[0-9]+$' || true)
}
all_listed() {
  count_peers
  ((PEERS_SEEN == N))
}

# Password logins in relay NAME's log (the agents' and the watcher's).
password_logins() { grep -cE 'logged in from .*\(password' "$WORK/$1.log" || true; }
ticket_logins() { grep -cE 'logged in from .*\(ticket' "$WORK/$1.log" || true; }

# restart OLD NEW HOW: OLD is stopped (HOW: KILL or TERM), NEW started on the same port; sets
# RECOVERY_S to the seconds from NEW's start until all N agents are listed.
restart() {
  local old=$1 new=$2 how=$3
  if [[ $how == KILL ]]; then
    signal_bg "$old" KILL
    wait_bg "$old" 10
  else
    stop_relay "$old"
  fi
  local t0
  t0=$(now)
  start_relay "$new" "$DATA" "127.0.0.1:$PORT"
  [[ $RELAY_PORT == "$PORT" ]] || fail "$new listens on $RELAY_PORT, not $PORT"
  local i
  for ((i = 0; i < 300; i++)); do
    all_listed && break
    (($(usecs) - t0 < 60000000)) || break
  done
  RECOVERY_S=$(elapsed "$t0")
  ((PEERS_SEEN == N)) || fail "after $how: only $PEERS_SEEN of $N agents listed $RECOVERY_S s after $new started"
  local polls=$((i + 1)) pw tk
  pw=$(password_logins "$new")
  tk=$(ticket_logins "$new")
  log "FIGURE: after $how, all $N agents logged in again $RECOVERY_S s after the new relay started ($polls peers polls; relay: $tk ticket logins, $pw password logins)"
  # The watcher's `peers` polls are the only password logins the new relay may have run.
  ((pw <= polls)) || fail "after $how: $pw password logins on $new, more than the watcher's $polls polls"
}

log "adding $N users"
add_users
start_relay relay1 "$DATA" 127.0.0.1:0
PORT=$RELAY_PORT
start_fixture echo echo
# The agents start 8 at a time, each batch once the previous one logged in: a first login costs
# an Argon2id check, and the address's bucket lets at most 10 run at once (docs/protocol.md §6).
t_start=$(now)
for ((i = 1; i <= N; i += 8)); do
  for ((j = i; j < i + 8 && j <= N; j++)); do
    start_bg "a$j" sb "$BG_LIMIT" "u$j" expose "echo=127.0.0.1:$FIXTURE_PORT"
  done
  for ((j = i; j < i + 8 && j <= N; j++)); do wait_log "a$j" "logged in to .* as u$j" 60; done
done
wait_for 30 "all $N agents listed by peers" all_listed
log "all $N agents logged in to relay1 $(elapsed "$t_start") s after their start"
call_echo watch u1:echo before || fail "u1:echo does not work before the restarts"

restart relay1 relay2 KILL
kill_s=$RECOVERY_S
restart relay2 relay3 TERM
term_s=$RECOVERY_S
call_echo watch "u$N:echo" after || fail "u$N:echo does not work after the restarts"
for ((i = 1; i <= N; i++)); do bg_running "a$i" || fail "agent a$i exited"; done

log "FIGURE: recovery of $N agents behind one address: kill -9 $kill_s s, SIGTERM $term_s s (limit $LIMIT_S s)"
between "$kill_s" 0 "$LIMIT_S" || fail "after kill -9 recovery took $kill_s s (limit $LIMIT_S s)"
between "$term_s" 0 "$LIMIT_S" || fail "after SIGTERM recovery took $term_s s (limit $LIMIT_S s)"
log "PASS"
