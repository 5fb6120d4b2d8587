#!/usr/bin/env bash
# Benchmarks of the Switchboard relay against direct TCP, haproxy (tcp mode), socat (fork) and
# `ssh -N -R`, on loopback. Prints ONE table: contender rows x workload columns, each cell the
# median over the runs with [min-max], and the ratio to the best peer (haproxy, socat, ssh, coturn).
#
#   bash bench/run.sh --quick     # smoke test, < 2 minutes once built: 1 run, small sizes
#   bash bench/run.sh --full      # the figures of docs/benchmarks.md: 3 interleaved runs
#
# Options: --runs N, --only LIST (comma list of contender keys: direct,haproxy,socat,ssh,coturn,
# sb-hop,sb-hop-tuned,sb-path,sb-path-tuned,sb-tls,sb-tls-tuned; and the reference rows
# haproxy3,haproxy3-splice, run only when named),
# --no-build, --no-install, --keep (keep the work directory), --out FILE (also write the table there).
#
# Contenders (every process on 127.0.0.1, ports picked here; the target services are sb_load's
# sink and echo servers):
#   direct   sb_load -> server
#   haproxy  sb_load -> haproxy (mode tcp, Debian defaults otherwise) -> server
#   socat    sb_load -> socat TCP-LISTEN,fork -> server
#   ssh      sb_load -> sshd (ssh -R listener) => ssh client -> server   (aes128-gcm)
#   coturn   sb_load (TURN client: one TCP allocation, Connect + ConnectionBind per stream, RFC
#            6062) -> turnserver -> server
#   sb-hop   (a) relay hop alone: sb_load as an agent (call()) -> relay -> sb_load sb-target (an
#            agent that is the server: echo and sink in-process, like the servers above)
#   sb-path  (b) whole user path: sb_load TCP -> `switchboard agent` [[forward]] -> relay -> expose -> server
#   sb-tls   (c) as (b) with TLS lines
#   sb-*     run with Switchboard's defaults: no --vacant-lines on `expose`/`agent` (the agents'
#            default, 2; sb_load's agents are given that same 2), no `user max-lines` (the default
#            of new users). Lines open on demand (NEED-LINES) inside the measured time.
#   sb-*-tuned  the same paths hand-tuned: EXPOSE_LINES / FORWARD_LINES vacant lines opened before
#            the clock starts, sb_load's agents with one vacant line per stream, `max-lines 65535`.
#            The table's last section gives default / tuned per column.
#   haproxy3 / haproxy3-splice (reference rows for (b), only with --only): sb_load -> haproxy ->
#            haproxy -> haproxy -> server, three processes as (b) has three forwarders; -splice with
#            haproxy's kernel splicing on. Their relay CPU is the middle haproxy's.
# A contender that cannot be started shows n/a with the reason below the table; the script still
# exits 0 as long as the Switchboard rows produced their figures. Nothing here asserts thresholds.
#
# Measurements: Gbit/s end to end (the sink confirms the byte count); 64-byte ping-pong on one
# connection; new sessions per second (connect + 1-byte echo + close, 8 in parallel); CPU from
# /proc/PID/stat (utime+stime+cutime+cstime over the process tree) during the two bulk runs divided
# by the GiB moved; memory per idle connection from the VmRSS delta (single-process contenders) or
# the sum of Pss (process trees: socat fork, sshd) before/after opening N idle connections, each
# after a 1-byte echo so the whole path is set up. Switchboard's idle figure is per idle logged-in
# line (sb_load sb-idle-lines) in a freshly started relay.
#
# Only processes started here are stopped (by PID, with their descendants) in the EXIT trap.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=quick
RUNS=""
ONLY=""
BUILD=1
INSTALL=1
KEEP=0
OUT=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --runs) RUNS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --keep) KEEP=1 ;;
    --out) OUT=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [[ $MODE == quick ]]; then
  : "${RUNS:=1}"
  BULK1=256Mi; BULK64=256Mi; PP_COUNT=2000; PP_WARMUP=100; RATE_S=1
  IDLE_N=300; LINES_N=1000; LINES_INSTANCES=1
else
  : "${RUNS:=3}"
  BULK1=2Gi; BULK64=2Gi; PP_COUNT=20000; PP_WARMUP=500; RATE_S=5
  IDLE_N=5000; LINES_N=15000; LINES_INSTANCES=15
fi
STREAMS=64
PARALLEL=8
EXPOSE_LINES=80      # tuned rows: the target agent's vacant lines: 64 streams + the rate workers + spare
FORWARD_LINES=72     # tuned rows: the forwarding agent's vacant lines
DEFAULT_LINES=2      # the agents' default vacant_lines (docs/configuration.md), for sb_load's agents
BG_LIMIT=3600        # no background process started here outlives this (seconds)
ALL_CONTENDERS=(direct haproxy socat ssh coturn sb-hop sb-hop-tuned sb-path sb-path-tuned sb-tls sb-tls-tuned)
# Run only when --only names them: reference rows (see start_haproxy_chain).
EXTRA_CONTENDERS=(haproxy3 haproxy3-splice)
for c in ${ONLY//,/ }; do
  [[ " ${ALL_CONTENDERS[*]} ${EXTRA_CONTENDERS[*]} " == *" $c "* ]] ||
    { echo "run.sh: unknown contender '$c' (known: ${ALL_CONTENDERS[*]} ${EXTRA_CONTENDERS[*]})" >&2; exit 2; }
done

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# --- packages and build -------------------------------------------------------------------------

install_peers() {
  local need=()
  command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
  command -v socat >/dev/null 2>&1 || need+=(socat)
  [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
  command -v turnserver >/dev/null 2>&1 || need+=(coturn)
  command -v ps >/dev/null 2>&1 || need+=(procps)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  [[ ${#need[@]} -eq 0 ]] && return 0
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo -n)
  log "installing ${need[*]} with apt-get"
  if ! { "${sudo[@]}" apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
         >/tmp/sb-bench-apt.log 2>&1; then
    log "apt-get failed (see /tmp/sb-bench-apt.log): the rows needing ${need[*]} will be n/a"
  fi
}

[[ $INSTALL -eq 1 ]] && install_peers
# The system python (a version manager's shim costs ~0.5 s a call); used for ports and the table.
if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=$(command -v python3) || {
  echo "run.sh: python3 is required" >&2; exit 2; }; fi

BUILD_DIR=${SB_BUILD_DIR:-$ROOT/build/release}  # SB_BUILD_DIR: use another (already built) tree
if [[ $BUILD -eq 1 ]]; then
  log "building release: sb_load switchboard switchboard-relay"
  (cd "$ROOT" && cmake --preset release >/dev/null && \
   cmake --build "$BUILD_DIR" -j "$(nproc)" --target sb_load switchboard switchboard-relay >/dev/null) || {
    echo "run.sh: build failed" >&2; exit 2; }
fi
LOAD=$BUILD_DIR/bench/sb_load
RELAY_BIN=$BUILD_DIR/apps/switchboard-relay
SB_BIN=$BUILD_DIR/apps/switchboard
for b in "$LOAD" "$RELAY_BIN" "$SB_BIN"; do
  [[ -x $b ]] || { echo "run.sh: $b not built (run without --no-build)" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench.XXXXXX")
RESULTS=$WORK/results.tsv
NOTES=$WORK/notes.tsv
: >"$RESULTS"
: >"$NOTES"
START_TIME=$(date +%s)

# --- background processes (ours only, by PID) ----------------------------------------------------

declare -A PID=()    # name -> PID of the program itself
declare -A TPID=()   # name -> PID of its `timeout` wrapper
STARTED=()           # names in start order

# start_bg NAME CMD...: runs CMD under `timeout` (safety net), output in $WORK/NAME.log.
start_bg() {
  local name=$1 i child=""
  shift
  timeout -k 5 "$BG_LIMIT" "$@" >"$WORK/$name.log" 2>&1 &
  local tpid=$!
  for ((i = 0; i < 200; i++)); do
    child=$(ps -o pid= --ppid "$tpid" 2>/dev/null | awk 'NR==1 {print $1}')
    [[ -n $child ]] && break
    kill -0 "$tpid" 2>/dev/null || break
    sleep 0.01
  done
  TPID[$name]=$tpid
  PID[$name]=${child:-$tpid}
  STARTED+=("$name")
}

# Every descendant of the given PIDs (and the PIDs), one per line.
tree_pids() {
  ps -e -o pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
    { pid[NR] = $1; parent[$1] = $2 }
    END {
      do { changed = 0
        for (i in pid) { p = pid[i]; if (!(p in want) && (parent[p] in want)) { want[p] = 1; changed = 1 } }
      } while (changed)
      for (p in want) print p
    }'
}

# stop_bg NAME: SIGTERM the program and its descendants, SIGKILL what is left after 5 s.
stop_bg() {
  local name=$1 i
  local pid=${PID[$name]:-} tpid=${TPID[$name]:-}
  [[ -z $tpid ]] && return 0
  local pids
  pids=$(tree_pids "$tpid")
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    local alive=0 p
    for p in $pids; do kill -0 "$p" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]] && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  wait "$tpid" 2>/dev/null
  unset "PID[$name]" "TPID[$name]"
  : "$pid"
}

cleanup() {
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    [[ -n ${TPID[${STARTED[$i]}]:-} ]] && stop_bg "${STARTED[$i]}"
  done
  if [[ $KEEP -eq 1 ]]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 limit=${2:-10} i
  for ((i = 0; i < limit * 20; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

wait_file() {
  local f=$1 limit=${2:-10} i
  for ((i = 0; i < limit * 20; i++)); do [[ -s $f ]] && return 0; sleep 0.05; done
  return 1
}

# wait_log FILE REGEX COUNT SECONDS: until FILE has COUNT lines matching REGEX.
wait_log() {
  local f=$1 re=$2 want=$3 limit=$4 i n
  for ((i = 0; i < limit * 10; i++)); do
    n=$(grep -cE "$re" "$f" 2>/dev/null) || n=0
    [[ $n -ge $want ]] && return 0
    sleep 0.1
  done
  return 1
}

# --- measurements --------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# CPU seconds used so far by the process trees of the given PIDs (reaped children included).
cpu_seconds() {
  [[ $# -eq 0 ]] && { echo 0; return; }
  local files=() p
  for p in $(tree_pids "$@"); do files+=("/proc/$p/stat"); done
  cat "${files[@]}" 2>/dev/null | awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); s += $12 + $13 + $14 + $15 } END { printf "%.3f\n", s / hz }'
}

# mem_kib METHOD PID...: rss = sum of VmRSS, pss = sum of Pss over the process trees.
mem_kib() {
  local method=$1 files=() p
  shift
  if [[ $method == rss ]]; then
    for p in $(tree_pids "$@"); do files+=("/proc/$p/status"); done
    cat "${files[@]}" 2>/dev/null | awk '/^VmRSS:/ { s += $2 } END { print s + 0 }'
  else
    for p in $(tree_pids "$@"); do files+=("/proc/$p/smaps_rollup"); done
    cat "${files[@]}" 2>/dev/null | awk '/^Pss:/ { s += $2 } END { print s + 0 }'
  fi
}

# jget FILE KEY: a top-level field of the last JSON line of FILE ("" if absent). sb_load's
# objects are flat apart from "latency" and "agent", whose keys the script never asks for.
jget() {
  local line v
  line=$(grep '^{' "$1" 2>/dev/null | tail -n 1)
  v=$(printf '%s' "$line" | grep -oE "\"$2\":(\"[^\"]*\"|[^,}]*)" | head -n 1)
  v=${v#\"$2\":}
  v=${v#\"}
  printf '%s\n' "${v%\"}"
}

# calc EXPR: floating-point arithmetic (awk).
calc() { awk "BEGIN { printf \"%.6g\\n\", $1 }"; }

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }      # contender run metric value
note() { printf '%s\t%s\n' "$1" "$2" >>"$NOTES"; log "$1: $2"; }

# --- target services (shared by every contender) -------------------------------------------------

start_servers() {
  start_bg sink "$LOAD" sink-server --listen 127.0.0.1:0 --port-file "$WORK/sink.port"
  start_bg echo "$LOAD" echo-server --listen 127.0.0.1:0 --port-file "$WORK/echo.port"
  # For paths without half-close (coturn): the client announces the length first.
  start_bg sink_lp "$LOAD" sink-server --length-prefix --listen 127.0.0.1:0 --port-file "$WORK/sink_lp.port"
  wait_file "$WORK/sink.port" && wait_file "$WORK/echo.port" && wait_file "$WORK/sink_lp.port" ||
    { echo "run.sh: servers did not start" >&2; exit 2; }
  SINK_LP_PORT=$(cat "$WORK/sink_lp.port")
  SINK_PORT=$(cat "$WORK/sink.port")
  ECHO_PORT=$(cat "$WORK/echo.port")
}

# --- contenders ----------------------------------------------------------------------------------
# start_X sets: C_SINK C_ECHO (ports sb_load connects to, or empty in agent mode), C_AGENT (sb_load
# agent-mode arguments, per service: C_AGENT_SINK / C_AGENT_ECHO), C_RELAY (PIDs of the relay hop),
# C_PATH (PIDs of every process between sb_load and the server), C_MEM (rss|pss), C_PROCS (names to
# stop). It returns non-zero with a reason in C_WHY when the contender cannot run.

reset_contender() {
  C_SINK=""; C_ECHO=""; C_AGENT_SINK=(); C_AGENT_ECHO=(); C_RELAY=(); C_PATH=(); C_MEM=rss
  C_PROCS=(); C_WHY=""; C_IDLE=peer; C_RELAY_PORT=""; C_RELAY_MODE=""
}

start_direct() {
  C_SINK=$SINK_PORT; C_ECHO=$ECHO_PORT; C_IDLE=none
}

# haproxy_cfg FILE SINK_TO ECHO_TO SINK_PORT ECHO_PORT [EXTRA_DEFAULTS [MAXCONN]]: a tcp-mode
# haproxy that listens on 127.0.0.1:SINK_PORT / ECHO_PORT and forwards to 127.0.0.1:SINK_TO / ECHO_TO.
haproxy_cfg() {
  cat >"$1" <<EOF
global
  maxconn ${7:-9000}
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
${6:-}
listen sink
  bind 127.0.0.1:$4
  server sink 127.0.0.1:$2
listen echo
  bind 127.0.0.1:$5
  server echo 127.0.0.1:$3
EOF
}

# haproxy_bin: sets HP to the haproxy program, or C_WHY and returns 1.
haproxy_bin() {
  HP=$(command -v haproxy || echo /usr/sbin/haproxy)
  [[ -x $HP ]] || { C_WHY="haproxy not installed"; return 1; }
}

start_haproxy() {
  haproxy_bin || return 1
  local p1 p2
  p1=$(free_port); p2=$(free_port)
  haproxy_cfg "$WORK/haproxy.cfg" "$SINK_PORT" "$ECHO_PORT" "$p1" "$p2"
  start_bg haproxy "$HP" -db -f "$WORK/haproxy.cfg"
  C_PROCS=(haproxy)
  wait_port "$p1" 10 && wait_port "$p2" 5 || { C_WHY="haproxy did not start: $(tail -n 3 "$WORK/haproxy.log" | tr '\n' ' ')"; return 1; }
  C_SINK=$p1; C_ECHO=$p2; C_RELAY=("${PID[haproxy]}"); C_PATH=("${PID[haproxy]}")
}

# Reference rows for the user path (b): three haproxy processes in a chain, the same number of
# forwarders and loopback TCP connections as (b) (client -> hp1 -> hp2 -> hp3 -> server). The
# "-splice" variant turns on haproxy's kernel splicing (option splice-auto), as every forwarder of
# (b) splices. They are not peers: the ratios stay against one haproxy.
start_haproxy_chain() {
  local extra=$1 i sink_to=$SINK_PORT echo_to=$ECHO_PORT p1 p2
  haproxy_bin || return 1
  for i in 3 2 1; do   # from the server back to the client
    p1=$(free_port); p2=$(free_port)
    # No idle figure here, so fewer connections: with splicing haproxy also reserves descriptors
    # for maxconn/4 pipes, and 9000 would ask for more than this machine's limit of 20,000.
    haproxy_cfg "$WORK/haproxy_chain$i.cfg" "$sink_to" "$echo_to" "$p1" "$p2" "$extra" 2000
    start_bg "haproxy_chain$i" "$HP" -db -f "$WORK/haproxy_chain$i.cfg"
    C_PROCS=("haproxy_chain$i" "${C_PROCS[@]}")
    wait_port "$p1" 10 && wait_port "$p2" 5 ||
      { C_WHY="haproxy $i did not start: $(tail -n 3 "$WORK/haproxy_chain$i.log" | tr '\n' ' ')"; return 1; }
    C_PATH+=("${PID[haproxy_chain$i]}")
    sink_to=$p1; echo_to=$p2
  done
  C_SINK=$sink_to; C_ECHO=$echo_to; C_RELAY=("${PID[haproxy_chain2]}"); C_IDLE=none
}
start_haproxy3() { start_haproxy_chain ""; }
start_haproxy3-splice() { start_haproxy_chain "  option splice-auto"; }

start_socat() {
  command -v socat >/dev/null 2>&1 || { C_WHY="socat not installed"; return 1; }
  local p1 p2
  p1=$(free_port); p2=$(free_port)
  start_bg socat_sink socat "TCP-LISTEN:$p1,bind=127.0.0.1,reuseaddr,fork,backlog=4096" "TCP:127.0.0.1:$SINK_PORT"
  start_bg socat_echo socat "TCP-LISTEN:$p2,bind=127.0.0.1,reuseaddr,fork,backlog=4096" "TCP:127.0.0.1:$ECHO_PORT"
  C_PROCS=(socat_sink socat_echo)
  wait_port "$p1" 10 && wait_port "$p2" 5 || { C_WHY="socat did not start"; return 1; }
  C_SINK=$p1; C_ECHO=$p2
  C_RELAY=("${PID[socat_sink]}" "${PID[socat_echo]}"); C_PATH=("${C_RELAY[@]}"); C_MEM=pss
}

start_coturn() {
  command -v turnserver >/dev/null 2>&1 || { C_WHY="coturn not installed"; return 1; }
  local p d=$WORK/coturn
  p=$(free_port)
  mkdir -p "$d"
  export SB_TURN_PASSWORD=turn-$RANDOM$RANDOM
  # TCP listener and TCP relays only, loopback peers allowed, long-term credentials; otherwise
  # defaults (one relay thread per core).
  start_bg coturn turnserver -n --listening-ip 127.0.0.1 --listening-port "$p" --relay-ip 127.0.0.1 \
    --min-port 40000 --max-port 59999 --allow-loopback-peers --lt-cred-mech \
    --user "bench:$SB_TURN_PASSWORD" --realm bench --no-tls --no-dtls --no-udp --no-udp-relay \
    --no-cli --no-multicast-peers --no-stdout-log --simple-log --log-file "$d/turn.log" \
    --pidfile "$d/turn.pid" --userdb "$d/turndb"
  C_PROCS=(coturn)
  wait_port "$p" 10 || { C_WHY="turnserver did not start: $(tail -n 3 "$WORK/coturn.log" | tr '\n' ' ')"; return 1; }
  local turn=(--turn "127.0.0.1:$p" --turn-user bench --turn-password-env SB_TURN_PASSWORD)
  C_AGENT_SINK=("${turn[@]}" --turn-peer "127.0.0.1:$SINK_LP_PORT")
  C_AGENT_ECHO=("${turn[@]}" --turn-peer "127.0.0.1:$ECHO_PORT")
  C_RELAY=("${PID[coturn]}"); C_PATH=("${C_RELAY[@]}")
}

start_ssh() {
  local sshd=/usr/sbin/sshd
  [[ -x $sshd ]] || { C_WHY="openssh-server not installed"; return 1; }
  command -v ssh >/dev/null 2>&1 || { C_WHY="openssh-client not installed"; return 1; }
  local d=$WORK/ssh
  if [[ ! -f $d/client_key ]]; then
    mkdir -p "$d" && chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" && ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" || {
      C_WHY="ssh-keygen failed"; return 1; }
    cp "$d/client_key.pub" "$d/authorized_keys"
  fi
  # Root runs sshd with privilege separation, which needs its (normally package-made) directory.
  if [[ $(id -u) -eq 0 && ! -d /run/sshd ]]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
  local sp l1 l2
  sp=$(free_port); l1=$(free_port); l2=$(free_port)
  cat >"$d/sshd_config" <<EOF
Port $sp
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxStartups 100
LogLevel ERROR
EOF
  "$sshd" -t -f "$d/sshd_config" >"$WORK/sshd-check.log" 2>&1 || { C_WHY="sshd config refused: $(tr '\n' ' ' <"$WORK/sshd-check.log")"; return 1; }
  start_bg sshd "$sshd" -D -e -f "$d/sshd_config"
  C_PROCS=(sshd)
  wait_port "$sp" 10 || { C_WHY="sshd did not start: $(tail -n 3 "$WORK/sshd.log" | tr '\n' ' ')"; return 1; }
  start_bg ssh ssh -N -F /dev/null -i "$d/client_key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes \
    -o Ciphers=aes128-gcm@openssh.com -o LogLevel=ERROR -p "$sp" \
    -R "127.0.0.1:$l1:127.0.0.1:$SINK_PORT" -R "127.0.0.1:$l2:127.0.0.1:$ECHO_PORT" "$(id -un)@127.0.0.1"
  C_PROCS=(ssh sshd)   # the client first: its sshd session then ends by itself
  wait_port "$l1" 15 && wait_port "$l2" 5 || { C_WHY="ssh -R did not come up: $(tail -n 3 "$WORK/ssh.log" | tr '\n' ' ')"; return 1; }
  C_SINK=$l1; C_ECHO=$l2; C_RELAY=("${PID[sshd]}"); C_PATH=("${PID[sshd]}" "${PID[ssh]}"); C_MEM=pss
}

# sb_add_users DATA_DIR MAX_LINES USER...: MAX_LINES "" leaves the users at the default.
sb_add_users() {
  local data=$1 max=$2 u
  shift 2
  for u in "$@"; do
    "$RELAY_BIN" user add "$u" --data-dir "$data" <"$WORK/pw.$u" >>"$WORK/users.log" 2>&1 &&
      { [[ -z $max ]] || "$RELAY_BIN" user max-lines "$u" "$max" --data-dir "$data" >>"$WORK/users.log" 2>&1; } || {
        echo "run.sh: cannot create Switchboard users (see $WORK/users.log)"; cat "$WORK/users.log"; return 1; } >&2
  done
}

# Two data directories, users with the same passwords: sbdata for the default rows, sbdata-tuned
# for the -tuned rows. "idle" (the idle-line figure: LINES_N lines, more than the default
# max_lines in --full) gets max-lines in both; it measures memory per line, not the data path.
SB_READY=0
sb_setup() {
  [[ $SB_READY -eq 1 ]] && return 0
  local u
  for u in dev caller fwd idle; do echo "pw-$u-$RANDOM$RANDOM" >"$WORK/pw.$u"; done
  sb_add_users "$WORK/sbdata" "" dev caller fwd && sb_add_users "$WORK/sbdata" 65535 idle &&
    sb_add_users "$WORK/sbdata-tuned" 65535 dev caller fwd idle || return 1
  SB_FP_DEFAULT=$("$RELAY_BIN" fingerprint --data-dir "$WORK/sbdata" 2>>"$WORK/users.log") || return 1
  SB_FP_TUNED=$("$RELAY_BIN" fingerprint --data-dir "$WORK/sbdata-tuned" 2>>"$WORK/users.log") || return 1
  export SB_PW_CALLER SB_PW_IDLE
  SB_PW_CALLER=$(cat "$WORK/pw.caller")
  SB_PW_IDLE=$(cat "$WORK/pw.idle")
  SB_READY=1
}

# sb_mode default|tuned: the settings of the Switchboard row being started (SB_TUNED, SB_DATA,
# SB_FP, and the vacant-line options of the agents: empty for the defaults).
sb_mode() {
  if [[ $1 == tuned ]]; then
    SB_TUNED=1; SB_DATA=$WORK/sbdata-tuned; SB_FP=$SB_FP_TUNED
    SB_EXPOSE_VACANT=(--vacant-lines "$EXPOSE_LINES"); SB_FORWARD_VACANT="vacant_lines = $FORWARD_LINES"
    SB_TARGET_LINES=$EXPOSE_LINES; SB_FORWARD_LINES=$FORWARD_LINES
  else
    SB_TUNED=0; SB_DATA=$WORK/sbdata; SB_FP=$SB_FP_DEFAULT
    SB_EXPOSE_VACANT=(); SB_FORWARD_VACANT=""
    SB_TARGET_LINES=$DEFAULT_LINES; SB_FORWARD_LINES=$DEFAULT_LINES
  fi
}

# sb_start_relay plain|tls TAG: a fresh relay; sets C_RELAY_PORT.
sb_start_relay() {
  local mode=$1 tag=$2 args=()
  [[ $mode == plain ]] && args=(--plaintext)
  # SB_FORWARD_THREADS=N compares thread counts (default: the relay's own, one per core).
  [[ -n ${SB_FORWARD_THREADS:-} ]] && args+=(--forward-threads "$SB_FORWARD_THREADS")
  rm -f "$WORK/$tag.port"
  start_bg "$tag" "$RELAY_BIN" serve --data-dir "$SB_DATA" --listen 127.0.0.1:0 --port-file "$WORK/$tag.port" "${args[@]}"
  C_PROCS+=("$tag")
  wait_file "$WORK/$tag.port" 10 || { C_WHY="relay did not start: $(tail -n 3 "$WORK/$tag.log" | tr '\n' ' ')"; return 1; }
  C_RELAY_PORT=$(cat "$WORK/$tag.port")
  C_RELAY_MODE=$mode
  C_RELAY=("${PID[$tag]}")
}

sb_link_args() {  # the agent's relay options for the current relay
  if [[ $C_RELAY_MODE == plain ]]; then echo "--relay 127.0.0.1:$C_RELAY_PORT --plaintext"
  else echo "--relay 127.0.0.1:$C_RELAY_PORT --fingerprint $SB_FP"; fi
}

sb_start_expose() {
  local tag=$1
  # shellcheck disable=SC2046
  start_bg "$tag" env SWITCHBOARD_PASSWORD="$(cat "$WORK/pw.dev")" "$SB_BIN" expose \
    "sink=127.0.0.1:$SINK_PORT" "echo=127.0.0.1:$ECHO_PORT" --user dev $(sb_link_args) \
    "${SB_EXPOSE_VACANT[@]}"
  C_PROCS=("$tag" "${C_PROCS[@]}")
  C_PATH+=("${PID[$tag]}")
  # Ready once the relay has logged in all of its vacant lines (the relay logs each login).
  wait_log "$WORK/$C_RELAY_TAG.log" 'dev/line#[0-9]+: logged in' "$SB_TARGET_LINES" 20 ||
    log "expose: fewer than $SB_TARGET_LINES lines logged in after 20 s; going on"
}

sb_start_forward() {
  local tag=$1 tls_line
  local p1 p2
  p1=$(free_port); p2=$(free_port)
  if [[ $C_RELAY_MODE == plain ]]; then tls_line="plaintext = true"; else tls_line="fingerprint = \"$SB_FP\""; fi
  cat >"$WORK/$tag.toml" <<EOF
relay = "127.0.0.1:$C_RELAY_PORT"
user = "fwd"
password_file = "$WORK/pw.fwd"
$tls_line
$SB_FORWARD_VACANT

[[forward]]
peer = "dev"
service = "sink"
listen = "127.0.0.1:$p1"

[[forward]]
peer = "dev"
service = "echo"
listen = "127.0.0.1:$p2"
EOF
  start_bg "$tag" "$SB_BIN" agent --config "$WORK/$tag.toml"
  C_PROCS=("$tag" "${C_PROCS[@]}")
  C_PATH+=("${PID[$tag]}")
  wait_port "$p1" 10 && wait_port "$p2" 5 || { C_WHY="forwarding agent did not start: $(tail -n 3 "$WORK/$tag.log" | tr '\n' ' ')"; return 1; }
  wait_log "$WORK/$C_RELAY_TAG.log" 'fwd/line#[0-9]+: logged in' "$SB_FORWARD_LINES" 20 ||
    log "forward: fewer than $SB_FORWARD_LINES lines logged in after 20 s; going on"
  C_SINK=$p1; C_ECHO=$p2
}

# sb_start_target TAG: sb_load sb-target as the called device "dev" (echo and sink in-process).
sb_start_target() {
  local tag=$1
  # shellcheck disable=SC2046
  start_bg "$tag" env SB_PW_DEV="$(cat "$WORK/pw.dev")" "$LOAD" sb-target --user dev \
    --password-env SB_PW_DEV $(sb_link_args) --vacant-lines "$SB_TARGET_LINES"
  C_PROCS=("$tag" "${C_PROCS[@]}")
  wait_log "$WORK/$C_RELAY_TAG.log" 'dev/line#[0-9]+: logged in' "$SB_TARGET_LINES" 20 ||
    log "sb-target: fewer than $SB_TARGET_LINES lines logged in after 20 s; going on"
}

# sb_start_hop default|tuned, and likewise sb_start_path plain|tls default|tuned: the rows.
sb_start_hop() {
  sb_setup || { C_WHY="Switchboard setup failed"; return 1; }
  sb_mode "$1"
  C_RELAY_TAG=relay_hop_$1_$RUN
  sb_start_relay plain "$C_RELAY_TAG" || return 1
  C_PATH=("${C_RELAY[@]}")
  sb_start_target "target_hop_$1_$RUN" || return 1
  # shellcheck disable=SC2207
  local link=($(sb_link_args)) lines=()
  # Default rows: sb_load's calling agent keeps the agents' default; tuned rows: sb_load's own
  # choice per workload (one vacant line per stream or worker, opened before the clock starts).
  [[ $SB_TUNED -eq 0 ]] && lines=(--vacant-lines "$DEFAULT_LINES")
  C_AGENT_SINK=("${link[@]}" "${lines[@]}" --user caller --password-env SB_PW_CALLER --peer dev --service sink)
  C_AGENT_ECHO=("${link[@]}" "${lines[@]}" --user caller --password-env SB_PW_CALLER --peer dev --service echo)
  C_IDLE=lines
  [[ $SB_TUNED -eq 1 ]] && C_IDLE=none   # the idle-line figure does not depend on the tuning
  return 0
}

sb_start_path() {
  sb_setup || { C_WHY="Switchboard setup failed"; return 1; }
  sb_mode "$2"
  C_RELAY_TAG=relay_$1_$2_$RUN
  sb_start_relay "$1" "$C_RELAY_TAG" || return 1
  C_PATH=("${C_RELAY[@]}")
  sb_start_expose "expose_$1_$2_$RUN" || return 1
  sb_start_forward "forward_$1_$2_$RUN" || return 1
  # (b) shares the relay and lines of (a): see its figure; (c) measures TLS lines.
  C_IDLE=none
  [[ $1 == tls && $SB_TUNED -eq 0 ]] && C_IDLE=lines
  return 0
}

start_sb-hop() { sb_start_hop default; }
start_sb-hop-tuned() { sb_start_hop tuned; }
start_sb-path() { sb_start_path plain default; }
start_sb-path-tuned() { sb_start_path plain tuned; }
start_sb-tls() { sb_start_path tls default; }
start_sb-tls-tuned() { sb_start_path tls tuned; }

stop_contender() {
  local n
  for n in "${C_PROCS[@]}"; do stop_bg "$n"; done
}

# --- workloads -----------------------------------------------------------------------------------

# load SERVICE(sink|echo) OUTFILE SUBCOMMAND ARGS...: sb_load against the current contender.
load() {
  local svc=$1 out=$2
  shift 2
  local target=()
  if [[ $svc == sink ]]; then
    if [[ -n $C_SINK ]]; then target=(--connect "127.0.0.1:$C_SINK"); else target=("${C_AGENT_SINK[@]}"); fi
  else
    if [[ -n $C_ECHO ]]; then target=(--connect "127.0.0.1:$C_ECHO"); else target=("${C_AGENT_ECHO[@]}"); fi
  fi
  timeout -k 5 600 "$LOAD" "$@" "${target[@]}" >"$out" 2>"$out.err"
}

# ok_json FILE: true if the last JSON line of FILE has no "error".
ok_json() { [[ -s $1 && -z $(jget "$1" error) ]]; }

measure_idle() {
  local c=$1 run=$2
  local out=$WORK/$c.$run.idle ready=$WORK/$c.$run.idle.ready
  [[ $C_IDLE == none ]] && return 0
  local before after n pid
  rm -f "$ready"
  before=$(mem_kib "$C_MEM" "${C_RELAY[@]}")
  if [[ $C_IDLE == lines ]]; then
    # shellcheck disable=SC2207
    local link=($(sb_link_args))
    timeout -k 5 900 "$LOAD" sb-idle-lines --count "$LINES_N" --instances "$LINES_INSTANCES" \
      --hold-seconds 600 --ready-file "$ready" --timeout 800 --user idle --password-env SB_PW_IDLE \
      "${link[@]}" >"$out" 2>"$out.err" &
  else
    local target=(--connect "127.0.0.1:$C_ECHO")
    [[ -z $C_ECHO ]] && target=("${C_AGENT_ECHO[@]}")
    timeout -k 5 900 "$LOAD" idle --count "$IDLE_N" --batch 32 --hold-seconds 600 \
      --ready-file "$ready" --timeout 800 "${target[@]}" >"$out" 2>"$out.err" &
  fi
  pid=$!
  if wait_file "$ready" 300; then
    sleep 3   # let the relay settle: late keep-alives, freed buffers, and its heap trim 2 s after the last login
    after=$(mem_kib "$C_MEM" "${C_RELAY[@]}")
    if [[ $C_IDLE == lines ]]; then n=$(jget "$ready" lines); else n=$(jget "$ready" open); fi
    local child
    child=$(ps -o pid= --ppid "$pid" | awk 'NR==1 {print $1}')
    [[ -n $child ]] && kill -TERM "$child" 2>/dev/null
  else
    n=0
    note "$c" "idle: not ready within 300 s"
  fi
  wait "$pid" 2>/dev/null
  if [[ -n $n && $n -gt 0 ]]; then
    local want=$IDLE_N
    [[ $C_IDLE == lines ]] && want=$LINES_N
    [[ $n -lt $want ]] && note "$c" "idle: only $n of $want opened ($(jget "$out" last_error)$(jget "$out" error))"
    record "$c" "$run" idle_kib "$(calc "($after - $before) / $n")"
    record "$c" "$run" idle_n "$n"
  else
    note "$c" "idle: failed: $(jget "$out" error)$(jget "$out" last_error) $(tail -c 300 "$out.err" | tr '\n' ' ')"
  fi
}

measure_bulk() {
  local c=$1 run=$2 streams=$3 bytes=$4 metric=$5
  local out=$WORK/$c.$run.$metric
  local r0 p0 r1 p1
  r0=$(cpu_seconds "${C_RELAY[@]}"); p0=$(cpu_seconds "${C_PATH[@]}")
  load sink "$out" bulk --bytes "$bytes" --streams "$streams" --timeout 300
  sleep 0.2   # socat children are reaped (their CPU moves to the parent) after their exit
  r1=$(cpu_seconds "${C_RELAY[@]}"); p1=$(cpu_seconds "${C_PATH[@]}")
  if ok_json "$out" && [[ -n $(jget "$out" gbps) ]]; then
    record "$c" "$run" "$metric" "$(jget "$out" gbps)"
    BULK_BYTES=$((BULK_BYTES + $(jget "$out" bytes)))
    BULK_RCPU=$(calc "$BULK_RCPU + $r1 - $r0")
    BULK_PCPU=$(calc "$BULK_PCPU + $p1 - $p0")
  else
    note "$c" "$metric: failed: $(jget "$out" error) $(tail -c 300 "$out.err" | tr '\n' ' ')"
  fi
}

run_contender() {
  local c=$1 run=$2
  reset_contender
  log "run $run/$RUNS: $c"
  if ! "start_$c"; then
    note "$c" "not run: $C_WHY"
    stop_contender
    return 0
  fi
  measure_idle "$c" "$run"
  BULK_BYTES=0; BULK_RCPU=0; BULK_PCPU=0
  measure_bulk "$c" "$run" 1 "$BULK1" bulk1
  measure_bulk "$c" "$run" "$STREAMS" "$BULK64" bulk64
  if [[ $BULK_BYTES -gt 0 && ${#C_RELAY[@]} -gt 0 ]]; then
    record "$c" "$run" relay_cpu "$(calc "$BULK_RCPU / ($BULK_BYTES / 1073741824)")"
    record "$c" "$run" path_cpu "$(calc "$BULK_PCPU / ($BULK_BYTES / 1073741824)")"
  fi
  local out=$WORK/$c.$run.pingpong
  load echo "$out" pingpong --count "$PP_COUNT" --warmup "$PP_WARMUP" --size 64 --timeout 300
  if ok_json "$out" && [[ -n $(jget "$out" p50_us) ]]; then
    record "$c" "$run" p50 "$(jget "$out" p50_us)"
    record "$c" "$run" p99 "$(jget "$out" p99_us)"
  else
    note "$c" "pingpong: failed: $(jget "$out" error) $(tail -c 300 "$out.err" | tr '\n' ' ')"
  fi
  out=$WORK/$c.$run.rate
  load echo "$out" rate --seconds "$RATE_S" --parallel "$PARALLEL" --timeout 120
  if [[ -n $(jget "$out" per_second) && -z $(jget "$out" error) ]]; then
    record "$c" "$run" rate "$(jget "$out" per_second)"
    local errs
    errs=$(jget "$out" errors)
    [[ ${errs:-0} != 0 ]] && note "$c" "rate: $errs failed sessions ($(jget "$out" last_error))"
  else
    note "$c" "rate: failed: $(jget "$out" error) $(tail -c 300 "$out.err" | tr '\n' ' ')"
  fi
  stop_contender
}

# --- main ----------------------------------------------------------------------------------------

CONTENDERS=()
for c in "${ALL_CONTENDERS[@]}"; do
  if [[ -z $ONLY || ",$ONLY," == *",$c,"* ]]; then CONTENDERS+=("$c"); fi
done
for c in "${EXTRA_CONTENDERS[@]}"; do
  if [[ ",$ONLY," == *",$c,"* ]]; then CONTENDERS+=("$c"); fi
done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
start_servers
log "mode $MODE: $RUNS run(s); bulk $BULK1 (1 stream) / $BULK64 ($STREAMS streams); ping-pong $PP_COUNT x 64 B; rate ${RATE_S}s x $PARALLEL; idle $IDLE_N connections / $LINES_N lines"
for ((RUN = 1; RUN <= RUNS; RUN++)); do
  for c in "${CONTENDERS[@]}"; do run_contender "$c" "$RUN"; done
done
ELAPSED=$(($(date +%s) - START_TIME))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
MACHINE="$(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start $LOAD_START, at end $LOAD_END"

TABLE=$WORK/table.md
"$PY" - "$RESULTS" "$NOTES" "$MODE" "$RUNS" "$ELAPSED" "$IDLE_N" "$LINES_N" "$BULK1" "$BULK64" "$PP_COUNT" "$RATE_S" "${CONTENDERS[*]}" "$MACHINE" >"$TABLE" <<'EOF'
import statistics, sys
from collections import defaultdict
(results, notes, mode, runs, elapsed, idle_n, lines_n, bulk1, bulk64, pp, rate_s, order, machine) = sys.argv[1:]
order = order.split()
vals = defaultdict(list)
for line in open(results):
    c, run, metric, v = line.rstrip("\n").split("\t")
    try:
        vals[(c, metric)].append(float(v))
    except ValueError:
        pass
cols = [  # metric, header, higher is better, decimals
    ("bulk1", "bulk 1 stream Gbit/s", True, 2),
    ("bulk64", "bulk 64 streams Gbit/s", True, 2),
    ("p50", "RTT p50 µs", False, 1),
    ("p99", "RTT p99 µs", False, 1),
    ("rate", "sessions/s (8 par.)", True, 0),
    ("relay_cpu", "relay CPU s/GiB", False, 3),
    ("path_cpu", "path CPU s/GiB", False, 3),
    ("idle_kib", "relay KiB per idle conn", False, 2),
]
names = {
    "direct": "direct TCP",
    "haproxy": "haproxy (tcp mode)",
    "socat": "socat (fork)",
    "ssh": "ssh -N -R (aes128-gcm)",
    "coturn": "coturn TURN-TCP (RFC 6062)",
    "sb-hop": "Switchboard (a) relay hop, plaintext",
    "sb-path": "Switchboard (b) user path, plaintext",
    "sb-tls": "Switchboard (c) user path, TLS",
    "sb-hop-tuned": "Switchboard (a) tuned",
    "sb-path-tuned": "Switchboard (b) tuned",
    "sb-tls-tuned": "Switchboard (c) tuned",
    "haproxy3": "reference: 3 haproxy in a chain",
    "haproxy3-splice": "reference: 3 haproxy in a chain, splice-auto",
}
peers = ["haproxy", "socat", "ssh", "coturn"]
def med(c, m):
    v = vals.get((c, m))
    return statistics.median(v) if v else None
best = {}
for m, _, hi, _ in cols:
    cand = [med(c, m) for c in peers if med(c, m) is not None and med(c, m) > 0]
    if cand:
        best[m] = max(cand) if hi else min(cand)
not_applicable = {("direct", m) for m in ("relay_cpu", "path_cpu", "idle_kib")} | {(c, "idle_kib") for c in ("sb-path", "haproxy3", "haproxy3-splice", "sb-hop-tuned", "sb-path-tuned", "sb-tls-tuned")}
failed = {}
for line in open(notes):
    c, text = line.rstrip("\n").split("\t", 1)
    failed.setdefault(c, []).append(text)
def fmt(x, d):
    if abs(x) >= 1000 and d <= 1:
        return f"{x:,.0f}"
    return f"{x:.{d}f}"
print(f"Switchboard benchmarks, {mode} mode: median of {runs} run(s) [min-max]; xN = times better than the best peer (haproxy, socat, ssh, coturn) in that column")
print(f"Machine: {machine}")
print()
print("| contender | " + " | ".join(h for _, h, _, _ in cols) + " |")
print("|---|" + "---|" * len(cols))
for c in order:
    cells = []
    for m, _, hi, d in cols:
        v = vals.get((c, m))
        if not v:
            cells.append("-" if (c, m) in not_applicable else "n/a")
            continue
        md = statistics.median(v)
        s = fmt(md, d)
        if len(v) > 1:
            s += f" [{fmt(min(v), d)}-{fmt(max(v), d)}]"
        if m in best and md > 0:
            r = md / best[m] if hi else best[m] / md
            s += f" x{r:.2f}"
        cells.append(s)
    print(f"| {names.get(c, c)} | " + " | ".join(cells) + " |")
print()
print(f"Sizes: bulk {bulk1} on 1 stream and {bulk64} over 64 streams (sink confirms the count); ping-pong {pp} x 64 B on one connection;")
print(f"sessions/s: connect + 1-byte echo + close, 8 in parallel for {rate_s} s; CPU: during the two bulk runs, per GiB moved")
print(f"(relay = the hop itself: haproxy, socat, sshd, switchboard-relay; path = every process between client and server);")
print(f"idle: peers {idle_n} idle proxied connections (VmRSS delta, or Pss sum for the process trees of socat and sshd);")
print(f"Switchboard {lines_n} idle logged-in lines in a fresh relay (plaintext for (a), TLS for (c); (b) uses the relay of (a)).")
print("Switchboard rows (a)-(c) run with the defaults (2 vacant lines per agent, default max_lines); the tuned rows with")
print("80 (target) and 72 (forward) vacant lines opened before the clock, one per stream for sb_load's agents, max-lines 65535.")
pairs = [(c, c + "-tuned") for c in ("sb-hop", "sb-path", "sb-tls") if c in order and c + "-tuned" in order]
if pairs:
    print()
    print("Defaults against tuned, from the medians above: default/tuned for throughput and sessions/s, tuned/default")
    print("for RTT and CPU (lower is better there), so >= 1.00 means the defaults do as well; the goal is >= 0.90.")
    print()
    rcols = [col for col in cols if col[0] != "idle_kib"]
    print("| default vs tuned | " + " | ".join(h for _, h, _, _ in rcols) + " |")
    print("|---|" + "---|" * len(rcols))
    for dc, tc in pairs:
        cells = []
        for m, _, hi, _ in rcols:
            d, t = med(dc, m), med(tc, m)
            if d is None or t is None or d <= 0 or t <= 0:
                cells.append("n/a")
            else:
                cells.append(f"x{(d / t) if hi else (t / d):.2f}")
        print(f"| {names.get(dc, dc)} | " + " | ".join(cells) + " |")
if failed:
    print()
    for c in order:
        for t in failed.get(c, []):
            print(f"- {names.get(c, c)}: {t}")
print()
print(f"Wall time of the measurements: {elapsed} s")
EOF
cat "$TABLE"
[[ -n $OUT ]] && cp "$TABLE" "$OUT"
cp "$RESULTS" "${OUT:-$WORK/x}.tsv" 2>/dev/null || true

# Exit status: 0 when every Switchboard row produced its figures (peers may be n/a).
status=0
for c in "${CONTENDERS[@]}"; do
  [[ $c == sb-* ]] || continue
  for m in bulk1 bulk64 p50 rate; do
    if ! awk -F'\t' -v c="$c" -v m="$m" '$1 == c && $3 == m { found = 1 } END { exit !found }' "$RESULTS"; then
      echo "run.sh: Switchboard row $c has no $m figure" >&2
      status=1
    fi
  done
done
exit $status
