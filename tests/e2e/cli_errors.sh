#!/usr/bin/env bash
# The command lines: --help of both programs, and clear errors with a non-zero exit for bad input:
# wrong password, unknown peer, bad relay addresses, no way to check the relay, duplicate and
# unknown users, allow-lists (NOT_ALLOWED), and `switchboard peers` listing the right users.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# --- help -----------------------------------------------------------------------------------
expect_ok sb-help timeout 10 "$SB_BIN" --help
for sub in agent expose forward pipe peers; do
  grep -qE "^ +$sub " "$WORK/sb-help.out" || fail "switchboard --help does not list '$sub'"
done
expect_ok relay-help timeout 10 "$RELAY_BIN" --help
for sub in serve fingerprint user; do
  grep -qE "^ +$sub " "$WORK/relay-help.out" || fail "switchboard-relay --help does not list '$sub'"
done
expect_ok relay-user-help timeout 10 "$RELAY_BIN" user --help
for sub in add del list passwd allow max-lines; do
  grep -qE "^ +$sub " "$WORK/relay-user-help.out" || fail "switchboard-relay user --help does not list '$sub'"
done
for sub in expose forward pipe peers; do expect_ok "sb-$sub-help" timeout 10 "$SB_BIN" "$sub" --help; done
log "ok: --help of both programs exits 0 and lists the subcommands"
expect_fail sb-no-subcommand "subcommand" timeout 10 "$SB_BIN"
expect_fail relay-no-subcommand "subcommand" timeout 10 "$RELAY_BIN"
expect_fail sb-unknown-option "--bogus" timeout 10 "$SB_BIN" peers --bogus

# --- user store -------------------------------------------------------------------------------
DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
add_user "$DATA" carol carol-pw
add_user "$DATA" dave dave-pw
expect_fail user-add-duplicate "already exists" relay_user "$DATA" add alice --password-file "$WORK/pw/alice"
expect_fail user-del-unknown "no user 'zed'" relay_user "$DATA" del zed
expect_fail user-add-bad-id "invalid user ID" relay_user "$DATA" add "bad name" --password-file "$WORK/pw/alice"
expect_fail user-add-empty-password "password" relay_user "$DATA" add erin --password-file /dev/null
expect_fail user-allow-unknown "no user 'zed'" relay_user "$DATA" allow zed alice
expect_fail user-allow-nothing "--any" relay_user "$DATA" allow bob
expect_fail user-max-lines-zero "N" relay_user "$DATA" max-lines bob 0
expect_ok user-list relay_user "$DATA" list
for u in alice bob carol dave; do grep -qE "^$u\b" "$WORK/user-list.out" || fail "user list lacks $u"; done
grep -qE "^erin\b" "$WORK/user-list.out" && fail "user list shows erin, whose add failed"
# bob takes calls from alice only. Settings are read at each password login: set before bob starts.
expect_ok user-allow relay_user "$DATA" allow bob alice
grep -qE "^bob\b.*allow=alice$" "$WORK/user-allow.out" || fail "allow printed: $(cat "$WORK/user-allow.out")"
# Deleting a user named in another's allow-list keeps the list (an empty one would let anyone
# call) and says so, since a user added later under that ID may call.
add_user "$DATA" frank frank-pw
add_user "$DATA" gina gina-pw
expect_ok user-allow-frank relay_user "$DATA" allow gina frank bob
expect_ok user-del-named relay_user "$DATA" del frank
grep -q "'frank' is still named in the allow-list of gina;" "$WORK/user-del-named.out" ||
  fail "del of an allowed caller printed: $(cat "$WORK/user-del-named.out")"
expect_ok user-del-gina relay_user "$DATA" del gina
grep -q "still named" "$WORK/user-del-gina.out" && fail "del gina warned: $(cat "$WORK/user-del-gina.out")"

# --- against a running relay -------------------------------------------------------------------
start_relay relay "$DATA" 127.0.0.1:0
start_fixture echo echo
start_agent bob bob expose "echo=127.0.0.1:$FIXTURE_PORT"
start_agent carol carol expose "echo=127.0.0.1:$FIXTURE_PORT"

# Cases that once took 30 s each, in the background (diagnostics.sh checks their messages).
NOWHERE=$(free_port)
start_bg slow-refused timeout 60 "$SB_BIN" peers --relay "127.0.0.1:$NOWHERE" --fingerprint "$FP" \
  --user alice --password-file "$WORK/pw/alice"
start_bg slow-wrong-fp timeout 60 "$SB_BIN" peers --relay "$RELAY_ADDR" \
  --fingerprint "$(printf '%064d' 0)" --user alice --password-file "$WORK/pw/alice"
start_bg slow-plain-vs-tls timeout 60 "$SB_BIN" peers --relay "$RELAY_ADDR" --plaintext \
  --user alice --password-file "$WORK/pw/alice"
SLOW_T0=$(now)

# Credentials: unknown user and wrong password look the same (BAD_CREDENTIALS), exit 5, promptly.
printf 'not-the-password\n' >"$WORK/pw/wrong"
expect_fail peers-wrong-password "BAD_CREDENTIALS" timeout 30 "$SB_BIN" peers "${SB_CONN[@]}" \
  --user alice --password-file "$WORK/pw/wrong"
expect_fail pipe-wrong-password "BAD_CREDENTIALS" timeout 30 "$SB_BIN" pipe bob:echo "${SB_CONN[@]}" \
  --user alice --password-file "$WORK/pw/wrong" </dev/null
expect_fail pipe-wrong-password-env "BAD_CREDENTIALS" env SWITCHBOARD_PASSWORD=nope \
  timeout 30 "$SB_BIN" pipe bob:echo "${SB_CONN[@]}" --user alice </dev/null
expect_fail peers-unknown-user "BAD_CREDENTIALS" timeout 30 "$SB_BIN" peers "${SB_CONN[@]}" \
  --user zed --password-file "$WORK/pw/alice"
# pipe never reads the password from stdin (stdin is the data).
expect_fail pipe-no-password "password" env -u SWITCHBOARD_PASSWORD timeout 30 "$SB_BIN" pipe \
  bob:echo "${SB_CONN[@]}" --user alice </dev/null

# Targets.
expect_fail pipe-unknown-peer "TARGET_OFFLINE" sb 30 alice pipe nobody:echo </dev/null
expect_fail pipe-offline-peer "TARGET_OFFLINE" sb 30 alice pipe dave:echo </dev/null
expect_fail pipe-self "SELF_CALL" sb 30 bob pipe bob:echo </dev/null
# docs/protocol.md §5 says FAIL(REJECTED, reason); the relay passes UNKNOWN_SERVICE through.
expect_fail pipe-unknown-service "(REJECTED|UNKNOWN_SERVICE).*nosuch" sb 30 alice pipe bob:nosuch </dev/null
expect_fail pipe-not-allowed "NOT_ALLOWED" sb 30 carol pipe bob:echo </dev/null
expect_fail pipe-not-allowed-dave "NOT_ALLOWED" sb 30 dave pipe bob:echo </dev/null
expect_fail pipe-bad-spec "PEER:SERVICE" sb 30 alice pipe bobecho </dev/null
expect_fail pipe-bad-service "invalid service name" sb 30 alice pipe bob:Bad/Name </dev/null
# ... while the allowed caller gets through, and carol (allow-list: anyone) takes dave's call.
out=$(echo via-relay | sb 30 alice pipe bob:echo) || fail "alice could not call bob:echo"
[[ $out == via-relay ]] || fail "alice -> bob:echo returned '$out'"
out=$(echo via-relay | sb 30 dave pipe carol:echo) || fail "dave could not call carol:echo"
[[ $out == via-relay ]] || fail "dave -> carol:echo returned '$out'"
log "ok: allowed calls work (alice -> bob, dave -> carol)"

# Relay address and how to check it.
ALICE=(--user alice --password-file "$WORK/pw/alice")
expect_fail relay-no-port "bad address 'nonsense'" timeout 30 "$SB_BIN" peers --relay nonsense \
  --fingerprint "$FP" "${ALICE[@]}"
expect_fail relay-bad-port "bad address '127.0.0.1:99999'" timeout 30 "$SB_BIN" peers \
  --relay 127.0.0.1:99999 --fingerprint "$FP" "${ALICE[@]}"
expect_fail relay-port-text "bad address '127.0.0.1:abc'" timeout 30 "$SB_BIN" peers \
  --relay 127.0.0.1:abc --fingerprint "$FP" "${ALICE[@]}"
expect_fail forward-bad-listen "bad address" timeout 30 "$SB_BIN" forward bob:echo --listen nowhere \
  "${SB_CONN[@]}" "${ALICE[@]}"
expect_fail no-fingerprint "give --fingerprint" timeout 30 "$SB_BIN" peers --relay "$RELAY_ADDR" \
  --user alice --password-file "$WORK/pw/alice"
expect_fail fingerprint-and-ca "not both" sb 30 alice peers --ca /dev/null
expect_fail fingerprint-malformed "fingerprint" timeout 30 "$SB_BIN" peers --relay "$RELAY_ADDR" \
  --fingerprint 00:11:22 --user alice --password-file "$WORK/pw/alice"
expect_fail no-user "user" timeout 30 "$SB_BIN" peers "${SB_CONN[@]}" --password-file "$WORK/pw/alice"

# peers: answering devices the caller may call, never itself; alice is call-only so nobody sees
# her; bob's allow-list hides him from everyone but alice. Sorted by user ID.
expect_ok peers-alice sb 30 alice peers
[[ $(cut -f1 "$WORK/peers-alice.out") == $'bob\ncarol' ]] || fail "alice's peers: $(cat "$WORK/peers-alice.out")"
expect_ok peers-dave sb 30 dave peers
[[ $(cut -f1 "$WORK/peers-dave.out") == carol ]] || fail "dave's peers: $(cat "$WORK/peers-dave.out")"
expect_ok peers-carol sb 30 carol peers
[[ ! -s $WORK/peers-carol.out ]] || fail "carol's peers (expected none): $(cat "$WORK/peers-carol.out")"
log "ok: peers: alice sees bob and carol, dave sees carol, carol sees nobody"

# The running relay follows changes the command line makes to its store (settings_poll_ms, 1 s),
# without the devices logging in again: bob's allow-list opens to anyone, and carol, deleted,
# is logged out on every line.
expect_ok user-allow-any relay_user "$DATA" allow bob --any
_dave_reaches_bob() { call_echo dave bob:echo live-change; }
wait_for 10 "dave's call to bob:echo after 'user allow bob --any' on the running relay" _dave_reaches_bob
expect_ok user-del-carol relay_user "$DATA" del carol
wait_log relay "carol: user removed from the store" 10
# Carol's agent is logged out for good: it exits with the login status (5) and does not retry.
wait_bg carol 10
((BG_STATUS == 5)) || fail "carol's agent exited with status $BG_STATUS after 'user del' (expected 5)"
log_has carol "BAD_CREDENTIALS.*user removed from the relay" || fail "carol's agent does not say why"
expect_fail pipe-deleted-peer "TARGET_OFFLINE" sb 30 dave pipe carol:echo </dev/null
log "ok: the running relay applied 'user allow' and 'user del' to logged-in devices"

# The slow cases: they must fail (non-zero, never a login), whatever the time they take.
for name in slow-refused slow-wrong-fp slow-plain-vs-tls; do
  wait_bg "$name" 70
  rc=$BG_STATUS
  ((rc != 0 && rc != 124 && rc != 137)) || fail "$name: exit status $rc: $(cat "$WORK/$name.log")"
  log "ok: $name -> exit $rc after about $(elapsed "$SLOW_T0") s: $(tail -n 1 "$WORK/$name.log")"
done
grep -q "127.0.0.1:$NOWHERE" "$WORK/slow-refused.log" || fail "slow-refused: message does not name the relay"
# Only the good logins above may appear in the relay log: alice (2x pipe, peers), bob, carol, dave.
if grep -E "logged in from" "$WORK/relay.log" | grep -vqE "(alice|bob|carol|dave)/line"; then
  fail "an unexpected login succeeded"
fi

stop_agent bob
stop_relay relay
log "PASS"
