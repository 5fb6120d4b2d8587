#!/usr/bin/env bash
# Where the relay's (and the agents') time goes: runs one workload through the relay hop alone
# (sb_load as the calling agent -> relay -> `sb_load sb-target`, the called device serving echo and
# sink itself, as run.sh's row (a) does) under `perf record -e cpu-clock` and prints the top
# symbols of each process. --expose puts `switchboard expose` and sb_load's servers behind the
# relay instead (row (a) before benchmarks change 10; the profiles in docs/benchmarks.md). --path
# profiles the whole user path of rows (b) and (c): sb_load -> `switchboard forward` -> relay ->
# `switchboard expose` -> sb_load's servers (implies --expose).
#
#   bash bench/profile.sh bulk       # 1 stream, 4 GiB, plaintext (splice path)
#   bash bench/profile.sh bulk64     # 64 streams, 4 GiB, plaintext
#   bash bench/profile.sh pingpong   # 64-byte round trips
#   bash bench/profile.sh rate       # new sessions (call, 1-byte echo, close), 8 in parallel
#   bash bench/profile.sh idle-lines # 15,000 logged-in idle lines: relay heap by call site (massif)
#   add --tls for TLS lines, --graph for call graphs (dwarf unwinding; larger files), --keep to
#   keep the perf data (the directory is printed), --expose or --path (above), --tuned (below).
#
# Switchboard runs with its defaults (2 vacant lines per agent, lines opened on demand, default
# max_lines). --tuned gives the target 80 vacant lines, the forward 8, sb_load's calling agent one
# per stream or worker, and the users max-lines 65535: the settings of run.sh's -tuned rows.
# The user "idle" always has max-lines 65535 (15,000 lines are more than the default allows).
#
# Needs perf (Debian: linux-perf) or valgrind for idle-lines; uses the release build. Only the
# processes started here are stopped, by PID.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHAT=${1:-bulk}
shift || true
TLS=0; GRAPH=0; KEEP=0; EXPOSE=0; PATH_MODE=0; TUNED=0
for a in "$@"; do
  case $a in
    --tls) TLS=1 ;;
    --graph) GRAPH=1 ;;
    --keep) KEEP=1 ;;
    --expose) EXPOSE=1 ;;
    --path) EXPOSE=1; PATH_MODE=1 ;;
    --tuned) TUNED=1 ;;
    *) echo "profile.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
B=${SB_BUILD_DIR:-$ROOT/build/release}  # SB_BUILD_DIR: use another build tree
LOAD=$B/bench/sb_load RELAY=$B/apps/switchboard-relay SB=$B/apps/switchboard
for x in "$LOAD" "$RELAY" "$SB"; do [[ -x $x ]] || { echo "profile.sh: build first: $x" >&2; exit 2; }; done
W=$(mktemp -d /tmp/sb-profile.XXXXXX)
PIDS=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null; done
  wait 2>/dev/null
  if [[ $KEEP -eq 1 ]]; then echo "kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
waitf() { local i; for ((i = 0; i < 200; i++)); do [[ -s $1 ]] && return 0; sleep 0.05; done; return 1; }

"$LOAD" sink-server --port-file "$W/sink.port" >/dev/null 2>&1 & PIDS+=($!)
"$LOAD" echo-server --port-file "$W/echo.port" >/dev/null 2>&1 & PIDS+=($!)
for u in dev caller idle; do
  echo "pw-$u" | "$RELAY" user add "$u" --data-dir "$W/data" >/dev/null 2>&1
  [[ $TUNED -eq 1 || $u == idle ]] && "$RELAY" user max-lines "$u" 65535 --data-dir "$W/data" >/dev/null 2>&1
done
# Vacant-line options: the agents' defaults unless --tuned (sb_load's agents are given the default 2).
EXPOSE_LINES=(); FORWARD_LINES=(); CALLER_LINES=(--vacant-lines 2); TARGET_N=2
[[ $TUNED -eq 1 ]] && { EXPOSE_LINES=(--vacant-lines 80); FORWARD_LINES=(--vacant-lines 8); CALLER_LINES=(); TARGET_N=80; }
waitf "$W/sink.port" && waitf "$W/echo.port" || exit 2
LINK=(--plaintext); RELAY_ARGS=(--plaintext)
if [[ $TLS -eq 1 ]]; then
  LINK=(--fingerprint "$("$RELAY" fingerprint --data-dir "$W/data")"); RELAY_ARGS=()
fi

RELAY_CMD=("$RELAY" serve --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/relay.port" "${RELAY_ARGS[@]}")
if [[ $WHAT == idle-lines ]]; then
  # Heap of the relay by allocation site with 15,000 idle lines (valgrind massif, slow but exact).
  command -v valgrind >/dev/null || { echo "profile.sh: valgrind needed" >&2; exit 2; }
  valgrind --tool=massif --pages-as-heap=no --massif-out-file="$W/massif.out" --threshold=0.5 \
    "${RELAY_CMD[@]}" >"$W/relay.log" 2>&1 & PIDS+=($!)
  waitf "$W/relay.port" || { sleep 5; waitf "$W/relay.port"; } || { cat "$W/relay.log"; exit 2; }
  RP=$(cat "$W/relay.port")
  SB_PW_IDLE=pw-idle timeout 600 "$LOAD" sb-idle-lines --count "${LINES:-15000}" --instances 15 \
    --relay "127.0.0.1:$RP" "${LINK[@]}" --user idle --password-env SB_PW_IDLE --hold-seconds 5 \
    --timeout 580 | tail -n 1
  kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null
  ms_print "$W/massif.out" | sed -n '1,60p'
  # The peak snapshot's allocation tree, trimmed.
  ms_print "$W/massif.out" | awk '/^ *n *time\(i\)/ {n++} n >= 2' | grep -E '^ *(->|\| ->|[0-9]+ +[0-9,]+ +[0-9,]+ )' | head -80
  exit 0
fi

"${RELAY_CMD[@]}" >"$W/relay.log" 2>&1 & PIDS+=($!); RPID=$!
waitf "$W/relay.port" || exit 2
RP=$(cat "$W/relay.port")
if [[ $EXPOSE -eq 1 ]]; then
  SWITCHBOARD_PASSWORD=pw-dev "$SB" expose "sink=127.0.0.1:$(cat "$W/sink.port")" "echo=127.0.0.1:$(cat "$W/echo.port")" \
    --relay "127.0.0.1:$RP" "${LINK[@]}" --user dev "${EXPOSE_LINES[@]}" >"$W/target.log" 2>&1 & PIDS+=($!); EPID=$!
else
  SB_PW_DEV=pw-dev "$LOAD" sb-target --user dev --password-env SB_PW_DEV --relay "127.0.0.1:$RP" \
    "${LINK[@]}" --vacant-lines "$TARGET_N" >"$W/target.log" 2>&1 & PIDS+=($!); EPID=$!
fi
sleep 2
export SB_PW_CALLER=pw-caller
AG=(--relay "127.0.0.1:$RP" "${LINK[@]}" "${CALLER_LINES[@]}" --user caller --password-env SB_PW_CALLER --peer dev)
SINK=("${AG[@]}" --service sink); ECHO=("${AG[@]}" --service echo)
FPID=
if [[ $PATH_MODE -eq 1 ]]; then
  # The caller's side of the user path: `switchboard forward` per service, sb_load connects to it.
  fwd() {  # fwd SERVICE PORTFILE
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$2"
    SWITCHBOARD_PASSWORD=pw-caller "$SB" forward "dev:$1" --listen "127.0.0.1:$port" \
      --relay "127.0.0.1:$RP" "${LINK[@]}" --user caller "${FORWARD_LINES[@]}" >"$W/forward-$1.log" 2>&1 &
    PIDS+=($!)
  }
  fwd sink "$W/fsink.port"; FPID=$!
  fwd echo "$W/fecho.port"
  sleep 2
  SINK=(--connect "127.0.0.1:$(cat "$W/fsink.port")"); ECHO=(--connect "127.0.0.1:$(cat "$W/fecho.port")")
fi
case $WHAT in
  bulk) CMD=("$LOAD" bulk --bytes 4Gi --streams 1 "${SINK[@]}") ;;
  bulk64) CMD=("$LOAD" bulk --bytes 4Gi --streams 64 "${SINK[@]}") ;;
  pingpong) CMD=("$LOAD" pingpong --count 50000 "${ECHO[@]}") ;;
  rate) CMD=("$LOAD" rate --seconds 8 --parallel 8 "${ECHO[@]}") ;;
  *) echo "profile.sh: unknown workload $WHAT" >&2; exit 2 ;;
esac
"${CMD[@]}" >"$W/load.out" 2>&1 & LPID=$!
sleep 1.5   # past the agent's login and the warm-up call
CG=(-g)
[[ $GRAPH -eq 1 ]] && CG=(--call-graph dwarf,8192)
if [[ $GRAPH -eq 0 ]]; then CG=(); fi
PROFILED="$RPID,$EPID,$LPID${FPID:+,$FPID}"
perf record -e cpu-clock -F 1999 "${CG[@]}" -p "$PROFILED" -o "$W/perf.data" -- sleep 4 >/dev/null 2>"$W/perf.err"
wait "$LPID"
echo "== workload: $(tail -n 1 "$W/load.out" | cut -c1-400)"
echo "== CPU share by process and object (cpu-clock samples, % of all samples)"
# (perf's --comms filter drops the top rows here; sort by comm and filter instead. On this kind
# of VM kernel time spent with interrupts off shows up as pvm_irq_enable / native_irq_enable.)
perf report -i "$W/perf.data" --stdio --sort comm,dso --no-children 2>/dev/null | grep -E '^ +[0-9]' | head -n 12
# Per process by PID: the calling agent and sb-target are both "sb_load".
ROLES=("relay:$RPID" "target:$EPID" "caller:$LPID")
[[ -n $FPID ]] && ROLES+=("forward(sink):$FPID")
for pc in "${ROLES[@]}"; do
  perf report -i "$W/perf.data" --stdio --pid "${pc#*:}" --sort dso,sym --no-children 2>/dev/null |
    grep -E '^ +[0-9]' >"$W/top.txt"
  echo "== top user-space symbols: ${pc%%:*} (% of all samples)"
  grep -v '\[k\]' "$W/top.txt" | head -n 25 | cut -c1-200
  echo "== top kernel symbols: ${pc%%:*}"
  grep '\[k\]' "$W/top.txt" | head -n 8 | cut -c1-160
done
