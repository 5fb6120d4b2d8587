#!/usr/bin/env bash
# CPU per new session, by process: a fixed number of sessions (call, 1-byte echo, close; 8 in
# parallel) through the relay hop alone (sb_load as the calling agent -> relay -> `switchboard
# expose` -> sb_load echo server). Prints utime+stime of the relay and of the expose agent (from
# /proc/PID/stat) per 1,000 sessions. CPU time, not sessions/s, so that a shared, loaded machine
# disturbs the figure less.
#
#   bash bench/session_cpu.sh [SESSIONS] [--tls] [--tuned]   # default 20000 sessions, plaintext
#
# Switchboard runs with its defaults (2 vacant lines per agent, lines opened on demand, default
# max_lines); --tuned gives expose 16 vacant lines, the calling agent one per worker (10) and both
# users max-lines 65535, the settings of the figures before elastic lines.
# SB_BUILD_DIR selects the build tree (default build/release). Only the processes started here
# are stopped, by PID.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=20000
TLS=0
TUNED=0
for a in "$@"; do
  case $a in
    --tls) TLS=1 ;;
    --tuned) TUNED=1 ;;
    [0-9]*) N=$a ;;
    *) echo "session_cpu.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
B=${SB_BUILD_DIR:-$ROOT/build/release}
LOAD=$B/bench/sb_load RELAY=$B/apps/switchboard-relay SB=$B/apps/switchboard
for x in "$LOAD" "$RELAY" "$SB"; do [[ -x $x ]] || { echo "session_cpu.sh: build first: $x" >&2; exit 2; }; done
W=$(mktemp -d /tmp/sb-session-cpu.XXXXXX)
PIDS=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
waitf() { local i; for ((i = 0; i < 200; i++)); do [[ -s $1 ]] && return 0; sleep 0.05; done; return 1; }
# utime+stime in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

"$LOAD" echo-server --port-file "$W/echo.port" >/dev/null 2>&1 & PIDS+=($!)
for u in dev caller; do
  echo "pw-$u" | "$RELAY" user add "$u" --data-dir "$W/data" >/dev/null 2>&1
  [[ $TUNED -eq 1 ]] && "$RELAY" user max-lines "$u" 65535 --data-dir "$W/data" >/dev/null 2>&1
done
EXPOSE_LINES=(); CALLER_LINES=(--vacant-lines 2)  # the agents' default (docs/configuration.md)
[[ $TUNED -eq 1 ]] && { EXPOSE_LINES=(--vacant-lines 16); CALLER_LINES=(); }
waitf "$W/echo.port" || exit 2
LINK=(--plaintext); RELAY_ARGS=(--plaintext)
if [[ $TLS -eq 1 ]]; then
  LINK=(--fingerprint "$("$RELAY" fingerprint --data-dir "$W/data")"); RELAY_ARGS=()
fi
"$RELAY" serve --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/relay.port" "${RELAY_ARGS[@]}" \
  >"$W/relay.log" 2>&1 & PIDS+=($!); RPID=$!
waitf "$W/relay.port" || exit 2
RP=$(cat "$W/relay.port")
SWITCHBOARD_PASSWORD=pw-dev "$SB" expose "echo=127.0.0.1:$(cat "$W/echo.port")" \
  --relay "127.0.0.1:$RP" "${LINK[@]}" --user dev "${EXPOSE_LINES[@]}" >"$W/expose.log" 2>&1 & PIDS+=($!); EPID=$!
sleep 2
AG=(--relay "127.0.0.1:$RP" "${LINK[@]}" "${CALLER_LINES[@]}" --user caller --password-env SB_PW_CALLER --peer dev)
# A short warm-up so that both agents have their lines before the counted run.
SB_PW_CALLER=pw-caller "$LOAD" rate --seconds 2 --parallel 8 --max-sessions 500 "${AG[@]}" --service echo >/dev/null 2>&1
r0=$(cpu_ticks "$RPID") e0=$(cpu_ticks "$EPID") t0=$(date +%s.%N)
SB_PW_CALLER=pw-caller "$LOAD" rate --seconds 600 --parallel 8 --max-sessions "$N" "${AG[@]}" --service echo >"$W/load.out" 2>&1
r1=$(cpu_ticks "$RPID") e1=$(cpu_ticks "$EPID") t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v n="$N" -v r="$((r1 - r0))" -v e="$((e1 - e0))" -v hz="$hz" -v t="$(echo "$t1 - $t0" | bc)" 'BEGIN {
  printf "sessions %d in %.1f s (%.0f/s); CPU ms per 1000 sessions: relay %.0f, expose agent %.0f\n",
         n, t, n / t, r * 1000 / hz / n * 1000, e * 1000 / hz / n * 1000 }'
tail -n 1 "$W/load.out" | cut -c1-300
