#!/usr/bin/env bash
# Memory under slow readers (issue 15): 64 fast senders into 64 slow readers through one relay
# with default settings (TLS), for a bounded time. Each sender (users mallory and alice, 32 calls
# each) pushes DATA frames (default 1 MiB, the largest allowed: the relay's chunk fills) as fast
# as the relay takes them; each receiver (dave and erin,
# raw answering lines) reads 1 KiB every 100 ms. The relay's VmRSS is sampled every second.
# Prints the start RSS, the RSS once every pair is connected (the base: the logins' Argon2id checks
# are over), the peak, the growth over the base and its ratio to the goal (64 MiB); nothing here
# asserts (tests/e2e/adversarial.sh bounds the growth generously).
#
#   bash bench/slow_readers.sh [--seconds 20] [--pairs 64] [--frame-bytes 1048576]
#                              [--build-dir build/ci] [--plaintext]
#
# Needs switchboard-relay and sb_attack built in the build directory (default build/ci). Only the
# processes started here are stopped (by PID) on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_RUN=20
PAIRS=64
FRAME=1048576
BUILD_DIR=$ROOT/build/ci
PLAIN=()
GOAL_MIB=64
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) SECONDS_RUN=$2; shift ;;
    --pairs) PAIRS=$2; shift ;;
    --frame-bytes) FRAME=$2; shift ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --plaintext) PLAIN=(--plaintext) ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "slow_readers.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
RELAY_BIN=$BUILD_DIR/apps/switchboard-relay
ATTACK_BIN=$BUILD_DIR/tests/adversarial/sb_attack
for b in "$RELAY_BIN" "$ATTACK_BIN"; do
  [[ -x $b ]] || { echo "slow_readers.sh: $b not built" >&2; exit 2; }
done
((SECONDS_RUN > 0 && SECONDS_RUN <= 300)) || { echo "--seconds: 1..300" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-slow-readers.XXXXXX")
PIDS=()
cleanup() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

DATA=$WORK/data
for u in mallory alice dave erin; do
  printf '%s-pw\n' "$u" >"$WORK/$u.pw"
  timeout 60 "$RELAY_BIN" user add "$u" --data-dir "$DATA" <"$WORK/$u.pw" >/dev/null ||
    { echo "could not add $u" >&2; exit 1; }
done
timeout -k 10 $((SECONDS_RUN + 120)) "$RELAY_BIN" serve --data-dir "$DATA" \
  --listen 127.0.0.1:0 --port-file "$WORK/port" "${PLAIN[@]}" >"$WORK/relay.log" 2>&1 &
TIMEOUT_PID=$!
PIDS+=("$TIMEOUT_PID")
for ((i = 0; i < 300; i++)); do
  [[ -s $WORK/port ]] && break
  sleep 0.1
done
[[ -s $WORK/port ]] || { echo "relay did not start" >&2; cat "$WORK/relay.log" >&2; exit 1; }
RELAY_PID=$(tr -d ' ' <"/proc/$TIMEOUT_PID/task/$TIMEOUT_PID/children")
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$RELAY_PID/status" 2>/dev/null || echo 0; }
RELAY_PORT=$(tr -d '[:space:]' <"$WORK/port")
# KiB the kernel holds in the relay's sockets (local port = the relay's): received bytes not yet
# read (skmem r) and bytes queued for sending (skmem w). Not in VmRSS, but the relay host's memory.
sock_kib() {
  command -v ss >/dev/null || { echo "0 0"; return; }
  ss -tmnH state established "( sport = :$RELAY_PORT )" 2>/dev/null | awk '
    { if (match($0, /skmem:\(r[0-9]+/)) r += substr($0, RSTART + 8, RLENGTH - 8)
      if (match($0, /,w[0-9]+/)) w += substr($0, RSTART + 2, RLENGTH - 2) }
    END { printf "%d %d\n", r / 1024, w / 1024 }'
}
RSS0=$(rss_kib)

timeout -k 10 $((SECONDS_RUN + 90)) "$ATTACK_BIN" slow-readers \
  --relay "127.0.0.1:$RELAY_PORT" "${PLAIN[@]}" \
  --user mallory,alice --password-file "$WORK/mallory.pw,$WORK/alice.pw" \
  --peer-user dave,erin --peer-password-file "$WORK/dave.pw,$WORK/erin.pw" \
  --service sink --connections "$PAIRS" --seconds "$SECONDS_RUN" --ready-file "$WORK/ready" \
  --frame-bytes "$FRAME" \
  >"$WORK/attack.json" 2>"$WORK/attack.log" &
ATTACK_PID=$!
PIDS+=("$ATTACK_PID")
# The base: once every pair is connected. The logins before it run Argon2id (64 MiB each while
# it runs), which is no part of what slow readers cost.
for ((i = 0; i < 600; i++)); do
  [[ -e $WORK/ready ]] && break
  kill -0 "$ATTACK_PID" 2>/dev/null || break
  sleep 0.1
done
BASE=$(rss_kib)
PEAK=$BASE
SAMPLES=()
SOCK_PEAK_R=0
SOCK_PEAK_W=0
for ((i = 0; i < SECONDS_RUN + 90; i++)); do
  kill -0 "$ATTACK_PID" 2>/dev/null || break
  r=$(rss_kib)
  SAMPLES+=("$((r / 1024))")
  ((r > PEAK)) && PEAK=$r
  read -r sr sw < <(sock_kib)
  ((sr + sw > SOCK_PEAK_R + SOCK_PEAK_W)) && SOCK_PEAK_R=$sr && SOCK_PEAK_W=$sw
  sleep 1
done
wait "$ATTACK_PID"
RC=$?
END=$(rss_kib)
GROWTH=$((PEAK - BASE))
echo "slow readers: $PAIRS pairs, ${SECONDS_RUN} s, $([[ ${#PLAIN[@]} -gt 0 ]] && echo plaintext || echo TLS) lines, DATA frames of $FRAME bytes"
echo "attack: $(cat "$WORK/attack.json") (exit $RC)"
echo "relay VmRSS per second (MiB): ${SAMPLES[*]}"
awk -v s="$RSS0" -v b="$BASE" -v p="$PEAK" -v e="$END" -v g="$GROWTH" -v goal="$GOAL_MIB" 'BEGIN {
  printf "relay VmRSS: start %.1f MiB, all pairs connected %.1f MiB, peak %.1f MiB, at the end %.1f MiB\n",
    s / 1024, b / 1024, p / 1024, e / 1024
  printf "growth under the slow readers (peak - connected): %.1f MiB = %.2fx the %d MiB goal\n",
    g / 1024, g / 1024 / goal, goal }'
echo "kernel buffers of the relay's sockets at their peak (ss skmem): $((SOCK_PEAK_R / 1024)) MiB received" \
  "not yet read, $((SOCK_PEAK_W / 1024)) MiB queued to send (not in VmRSS)"
exit "$RC"
