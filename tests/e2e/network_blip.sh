#!/usr/bin/env bash
# Never silently dead after a network blip (docs/protocol.md §8). Bob's agent runs in a network
# namespace this test makes, joined to the relay's by a veth pair; alice and the relay stay in
# this namespace. Two blips, each a few seconds long, with no FIN and no RST:
#   lost: every packet is lost on the way (both ends' neighbour entries point at an address
#         nobody has), as when a NAT forgot the flow: bob's kernel retransmits in vain;
#   down: bob's interface goes down (Wi-Fi gone): bob's kernel has no route and sends nothing.
# Alice holds an idle session with bob:echo across each. With a 1 s keep-alive:
#   - the relay ends the session (TERMINATE(PEER_LOST): alice's pipe exits 8 and says so) and
#     drops bob's lines, so alice's peers no longer list bob: silence for 3 intervals;
#   - bob's agent replaces all its lines while the link is still cut, the paired one too (PONG
#     late, and TCP shows the path dead: net::path_dead), so its side of the session ends too;
#   - once the link is back, a call to bob:echo works again, with the same agent process.
# Needs root (ip netns); exits 77 (skipped) without it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

[[ $(id -u) == 0 ]] || skip "needs root for a network namespace"
command -v ip >/dev/null || skip "needs ip (iproute2)"

NS=sb-blip-$$
VR=sbb$$r  # the relay's end, in this namespace
VD=sbb$$d  # bob's end, in $NS
NET=198.18.$(($$ % 256))  # RFC 2544 benchmarking range: never a real network
# A run that CTest killed (SIGKILL at its TIMEOUT) never ran its EXIT trap: remove the namespaces
# and links of runs whose shell is gone, so that their addresses cannot clash with this one's.
for old_ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^sb-blip-[0-9]+$/ { print $1 }'); do
  old_pid=${old_ns#sb-blip-}
  if ! kill -0 "$old_pid" 2>/dev/null; then
    ip netns del "$old_ns" 2>/dev/null || true
    ip link del "sbb${old_pid}r" 2>/dev/null || true
  fi
done
test_teardown() {
  ip netns del "$NS" 2>/dev/null  # takes $VD and with it its peer $VR
  ip link del "$VR" 2>/dev/null || true
}
ip netns add "$NS" || skip "cannot make a network namespace here"
# Each step may be refused in a sandbox (no CAP_NET_ADMIN, no veth, no sysfs for netns exec):
# that is a skip, not a failure. (errexit is off inside this list, hence the && chain.)
{ ip link add "$VR" type veth peer name "$VD" netns "$NS" &&
  ip addr add "$NET.1/30" dev "$VR" &&
  ip link set "$VR" up &&
  ip -n "$NS" addr add "$NET.2/30" dev "$VD" &&
  ip -n "$NS" link set "$VD" up &&
  ip -n "$NS" link set lo up &&
  ip netns exec "$NS" true; } || skip "cannot link a network namespace to this one here"

# ns_bg CMD [ARGS...]: for start_bg, CMD in bob's namespace (ip netns exec execs: same PID).
ns_bg() { exec ip netns exec "$NS" timeout -k 60 "$BG_LIMIT" "$@"; }

DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
# Alice reaches the relay's address on this host; bob reaches it over the veth link.
start_relay relay "$DATA" "$NET.1:0"

start_bg echo ns_bg "$PYTHON" "$FIXTURES" echo "$WORK/echo.port"
ECHO_PORT=$(read_port_file "$WORK/echo.port")
start_bg bob ns_bg "$SB_BIN" expose "echo=127.0.0.1:$ECHO_PORT" "${SB_CONN[@]}" --user bob \
  --password-file "$WORK/pw/bob" --keepalive-ms 1000
wait_log bob "logged in to .* as bob" 30
BOB_PID=${BG_PID[bob]}

call_echo alice bob:echo before-blip || fail "bob:echo does not work before the blip"
bob_listed() { sb 8 alice peers 2>>"$WORK/calls.log" | cut -f1 | grep -qx bob; }
bob_listed || fail "alice's peers do not list bob before the blip"

# count_log NAME REGEX: how many lines of NAME's log match.
count_log() { grep -cE -- "$2" "$WORK/$1.log" 2>/dev/null || true; }

# cut KIND / mend KIND: start and end a blip of that kind (see the top of this file).
NOBODY_R=00:00:5e:00:53:01  # RFC 7042 documentation addresses
NOBODY_D=00:00:5e:00:53:02
cut() {
  case $1 in
    lost)
      ip neigh replace "$NET.2" lladdr "$NOBODY_R" dev "$VR" nud permanent
      ip -n "$NS" neigh replace "$NET.1" lladdr "$NOBODY_D" dev "$VD" nud permanent
      ;;
    down) ip -n "$NS" link set "$VD" down ;;
  esac
}
mend() {
  case $1 in
    lost)
      ip neigh del "$NET.2" dev "$VR"
      ip -n "$NS" neigh del "$NET.1" dev "$VD"
      ;;
    down) ip -n "$NS" link set "$VD" up ;;
  esac
}

# blip KIND: one blip with an idle session across it; checks what the top of this file says.
blip() {
  local kind=$1 fifo=$WORK/in-$1.fifo t0 t1 ended_at back_at
  local bob_failed_before
  bob_failed_before=$(count_log bob "session from alice for 'echo' failed")
  # An idle session across the blip: stdin is a FIFO this shell holds open.
  mkfifo "$fifo"
  exec 7<>"$fifo"
  BG_STDIN="$fifo" BG_STDOUT="$WORK/pipe-$kind.out" start_bg "pipe-$kind" sb 120 alice pipe bob:echo
  echo "in-session-$kind" >&7
  _echoed() { grep -qx "in-session-$kind" "$WORK/pipe-$kind.out"; }
  wait_for 10 "the session's first echo ($kind)" _echoed

  cut "$kind"
  t0=$(now)
  log "[$kind] link cut; alice holds an idle session with bob:echo"
  wait_bg "pipe-$kind" 20
  ended_at=$(elapsed "$t0")
  log "FIGURE: [$kind] alice's session ended $ended_at s into the blip (status $BG_STATUS)"
  ((BG_STATUS == 8)) || fail "[$kind] alice's pipe exited $BG_STATUS, not 8 (session ended abnormally), although its peer was lost"
  log_has "pipe-$kind" "session with bob:echo ended: PEER_LOST" ||
    fail "[$kind] alice's pipe did not report PEER_LOST: $(cat "$WORK/pipe-$kind.log")"
  _bob_gone() { ! bob_listed; }
  wait_for 15 "the relay to drop bob's silent lines ($kind)" _bob_gone
  log "FIGURE: [$kind] the relay no longer lists bob $(elapsed "$t0") s into the blip"
  _bob_ended() { (($(count_log bob "session from alice for 'echo' failed") > bob_failed_before)); }
  wait_for 15 "bob's agent to end its side of the session while the link is cut ($kind)" _bob_ended
  log "FIGURE: [$kind] bob's agent had given up the paired line by $(elapsed "$t0") s into the blip"
  sleep 1  # a blip longer than the agent's first reconnect attempts

  mend "$kind"
  t1=$(now)
  log "[$kind] link mended after $(elapsed "$t0") s"
  await_echo alice bob:echo "$t1" 45 "a call to bob:echo after the blip ($kind)"
  back_at=$ECHO_BACK_AT
  [[ ${BG_PID[bob]} == "$BOB_PID" ]] && bg_running bob || fail "bob's agent is not the same process"
  log "FIGURE: [$kind] bob:echo works again $back_at s after the link came back ($ECHO_CALLS calls)"
  exec 7>&-

  # 3 keep-alive intervals of silence, the relay's deadline check and TERMINATE: a few seconds.
  # (Bob's last PING may have arrived up to one interval before the cut.)
  between "$ended_at" 1.5 8 || fail "[$kind] alice's session ended $ended_at s into the blip (expected 2-8 s)"
  between "$back_at" 0 20 || fail "[$kind] bob:echo came back only $back_at s after the link (limit 20 s)"
}

blip lost
blip down

stop_agent bob
stop_relay relay
log "PASS"
