#!/usr/bin/env bash
# Several programs of one device under one user ID (docs/protocol.md §7): bob runs
# `switchboard expose echo=...`, `switchboard agent --config` with service "web", and
# `switchboard-fax daemon` (service "fax") at the same time. alice reaches each of them; `peers`
# lists bob with all three services; none of bob's programs is knocked off. Then a second
# `expose echo=...` as bob takes "echo" over: the first expose is told (SERVICE-LOST), logs it and
# exits with status 5 (it has nothing left to serve), while bob's other programs stay.
#   $1 switchboard-relay, $2 switchboard, $3 switchboard-fax
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

[[ $# -ge 3 ]] || fail "usage: $0 RELAY SWITCHBOARD SWITCHBOARD-FAX"
FAX_BIN=$(realpath "$3")

DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
start_relay relay "$DATA" 127.0.0.1:0 --plaintext
start_fixture echo1 echo
ECHO1=$FIXTURE_PORT
start_fixture echo2 echo
ECHO2=$FIXTURE_PORT
start_fixture web echo
WEB=$FIXTURE_PORT

start_agent expose1 bob expose "echo=127.0.0.1:$ECHO1"
cat >"$WORK/bob-agent.toml" <<TOML
[services]
web = "127.0.0.1:$WEB"
TOML
start_agent agent bob agent --config "$WORK/bob-agent.toml"
start_bg fax timeout -k 60 "$BG_LIMIT" "$FAX_BIN" daemon "${SB_CONN[@]}" --user bob \
  --password-file "$WORK/pw/bob" --spool "$WORK/spool-bob"
wait_log fax "fax machine bob" 30

# peers lists bob once, with the services of all three programs.
_listed() {
  sb 10 alice peers --log-level off >"$WORK/peers.out" 2>>"$WORK/calls.log" &&
    grep -qx $'bob\techo,fax,web' "$WORK/peers.out"
}
wait_for 20 "alice's peers to list bob with echo, fax and web" _listed
log "ok: peers lists $(cat "$WORK/peers.out")"

call_echo alice bob:echo hello-echo || fail "bob:echo did not answer"
call_echo alice bob:web hello-web || fail "bob:web did not answer"
# The fax daemon answers "fax": a pipe call reaches it (it speaks T.38, not echo, so only the
# relay's routing is checked: the call is accepted by the daemon, not refused UNKNOWN_SERVICE).
if sb 8 alice pipe bob:nothing --log-level warn </dev/null >/dev/null 2>"$WORK/unknown.err"; then
  fail "a call for a service nobody announced succeeded"
fi
grep -q "UNKNOWN_SERVICE" "$WORK/unknown.err" || fail "no UNKNOWN_SERVICE: $(cat "$WORK/unknown.err")"
for p in expose1 agent fax; do
  bg_running "$p" || fail "bob's $p exited"
  ! grep -qE "DUPLICATE_LOGIN|taken over|served by another" "$WORK/$p.log" ||
    fail "bob's $p was knocked off: $(grep -E "DUPLICATE_LOGIN|taken over|served by another" "$WORK/$p.log")"
done
log "ok: echo and web answered by their programs, an unknown service is UNKNOWN_SERVICE, nobody knocked off"

# A newer expose of "echo" takes it over; the old one gives up (status 5) instead of fighting.
start_agent expose2 bob expose "echo=127.0.0.1:$ECHO2"
wait_log expose1 "served by another instance of bob" 10
wait_bg expose1 10
status=$BG_STATUS
[[ $status == 5 ]] || fail "the replaced expose exited with status '$status', expected 5"
call_echo alice bob:echo hello-again || fail "bob:echo did not answer after the takeover"
bg_running agent || fail "bob's agent exited after the takeover of echo"
bg_running fax || fail "bob's fax daemon exited after the takeover of echo"
log "ok: the newer expose took echo over; the old one exited 5; web and fax stayed"

stop_agent expose2
stop_agent agent
stop_bg fax || fail "fax daemon exited with status $? on SIGTERM"
stop_relay relay
log "PASS"
