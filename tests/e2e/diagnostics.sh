#!/usr/bin/env bash
# Every cause of a failed line is named at once, with its own exit status (switchboard --help,
# docs/configuration.md): one-shot commands fail within 5 s at the first definitive failure (wrong
# fingerprint, CA that did not sign the relay, relay down, unresolvable name, TLS on one side
# only either way, wrong password), a silent relay at connect_timeout_ms; the relay logs a client that spoke the other transport; a
# long-running agent with a wrong password exits without retrying; one whose user is removed
# exits; one whose relay is down logs the cause and the next try once, and logs when it is back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# expect_status NAME STATUS REGEX CMD...: CMD exits with STATUS within 5 s and prints REGEX.
expect_status() {
  local name=$1 want=$2 re=$3
  shift 3
  local t0 took rc=0
  t0=$(now)
  "$@" >"$WORK/$name.out" 2>&1 || rc=$?
  took=$(elapsed "$t0")
  ((rc == want)) || fail "$name: exit status $rc, expected $want; output: $(cat "$WORK/$name.out")"
  between "$took" 0 5 || fail "$name: took $took s (over 5 s); output: $(cat "$WORK/$name.out")"
  grep -qE -- "$re" "$WORK/$name.out" ||
    fail "$name: exit $rc but the message does not match /$re/: $(cat "$WORK/$name.out")"
  log "ok: $name -> exit $rc in $took s: $(grep -E -m1 -- "$re" "$WORK/$name.out")"
}

expect_ok help timeout 10 "$SB_BIN" --help
for status in 0 1 2 3 4 5 6 7 8; do
  grep -qE "^ +$status  " "$WORK/help.out" || fail "--help does not list exit status $status"
done
expect_status usage 2 "--bogus" timeout 10 "$SB_BIN" peers --bogus

DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
add_user "$DATA" carol carol-pw
printf 'not-the-password\n' >"$WORK/pw/wrong"
start_relay plain "$WORK/plain-data" 127.0.0.1:0 --plaintext
PLAIN_ADDR=$RELAY_ADDR
start_relay relay "$DATA" 127.0.0.1:0
ALICE=(--user alice --password-file "$WORK/pw/alice")

# --- one-shot commands ------------------------------------------------------------------------
ZEROS=$(printf '%064d' 0)
expect_status wrong-fingerprint 4 \
  "fingerprint mismatch: expected 00(:00){31}, the relay presented $FP" \
  timeout 30 "$SB_BIN" peers --relay "$RELAY_ADDR" --fingerprint "$ZEROS" "${ALICE[@]}"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca -days 1 \
  -keyout "$WORK/other-ca.key" -out "$WORK/other-ca.crt" 2>/dev/null || fail "openssl req failed"
expect_status wrong-ca 4 "certificate verification failed: .*host name checked: 127.0.0.1" \
  timeout 30 "$SB_BIN" peers --relay "$RELAY_ADDR" --ca "$WORK/other-ca.crt" "${ALICE[@]}"
NOWHERE=$(free_port)
expect_status relay-down 3 "127.0.0.1:$NOWHERE refused" \
  timeout 30 "$SB_BIN" peers --relay "127.0.0.1:$NOWHERE" --fingerprint "$FP" "${ALICE[@]}"
expect_status unresolvable 3 "cannot resolve the relay's host name 'relay.invalid'" \
  timeout 30 "$SB_BIN" peers --relay "relay.invalid:$RELAY_PORT" --fingerprint "$FP" "${ALICE[@]}"
expect_status pipe-relay-down 3 "refused" \
  timeout 30 "$SB_BIN" pipe bob:echo --relay "127.0.0.1:$NOWHERE" --fingerprint "$FP" "${ALICE[@]}"

# A relay that accepts and then says nothing: a timeout is still a timeout (connect_timeout_ms),
# named with the step it cut short.
"$PYTHON" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); __import__("os").replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(50)' "$WORK/silent.port" &
SILENT_PID=$!
BG_ALL+=("$SILENT_PID")
SILENT_PORT=$(read_port_file "$WORK/silent.port")
printf 'connect_timeout_ms = 1000\n' >"$WORK/short-timeout.toml"
expect_status silent-relay 3 "no answer from the relay at 127.0.0.1:$SILENT_PORT within the connect timeout of 1000 ms \(while in the TLS handshake\)" \
  timeout 30 "$SB_BIN" peers --config "$WORK/short-timeout.toml" --relay "127.0.0.1:$SILENT_PORT" \
  --fingerprint "$FP" "${ALICE[@]}"
kill "$SILENT_PID" 2>/dev/null || true

# TLS on one side only, both ways; each relay logs what the client spoke.
expect_status plaintext-agent 4 "this relay requires TLS" \
  timeout 30 "$SB_BIN" peers --relay "$RELAY_ADDR" --plaintext "${ALICE[@]}"
wait_log relay "127.0.0.1:[0-9]+: client spoke plaintext" 5
expect_status plaintext-relay 4 "runs without TLS \(--plaintext\)" \
  timeout 30 "$SB_BIN" peers --relay "$PLAIN_ADDR" --fingerprint "$FP" "${ALICE[@]}"
wait_log plain "127.0.0.1:[0-9]+: client spoke TLS" 5
# A TLS server that is not a Switchboard relay answers the LOGIN frame with a TLS alert.
start_fixture tls-server tlsalert
expect_status plaintext-vs-tls-server 4 "speaks TLS" \
  timeout 30 "$SB_BIN" peers --relay "127.0.0.1:$FIXTURE_PORT" --plaintext "${ALICE[@]}"

# Credentials.
expect_status wrong-password 5 "BAD_CREDENTIALS" \
  timeout 30 "$SB_BIN" peers "${SB_CONN[@]}" --user alice --password-file "$WORK/pw/wrong"
expect_status pipe-wrong-password 5 "BAD_CREDENTIALS" \
  timeout 30 "$SB_BIN" pipe bob:echo "${SB_CONN[@]}" --user alice --password-file "$WORK/pw/wrong"
expect_status pipe-offline-peer 7 "TARGET_OFFLINE" sb 30 alice pipe bob:echo
expect_ok peers-ok sb 30 alice peers

# --- long-running agents ----------------------------------------------------------------------
# A wrong password is not retried: the agent exits with the login status after one refusal.
refusals_before=$(grep -c "login refused: BAD_CREDENTIALS" "$WORK/relay.log" || true)
t0=$(now)
start_bg bad-pw timeout 60 "$SB_BIN" expose echo=127.0.0.1:9 "${SB_CONN[@]}" --user bob \
  --password-file "$WORK/pw/wrong"
wait_bg bad-pw 5
((BG_STATUS == 5)) || fail "agent with a wrong password: exit status $BG_STATUS: $(cat "$WORK/bad-pw.log")"
log_has bad-pw "BAD_CREDENTIALS" || fail "agent with a wrong password: cause not logged"
refusals=$(($(grep -c "login refused: BAD_CREDENTIALS" "$WORK/relay.log" || true) - refusals_before))
((refusals == 1)) || fail "agent with a wrong password tried $refusals times"
log "ok: expose with a wrong password exited with status 5 after one refusal, in $(elapsed "$t0") s"

# Its user removed while it runs: the agent exits with the login status.
start_agent carol carol expose echo=127.0.0.1:9
expect_ok del-carol relay_user "$DATA" del carol
t0=$(now)
wait_bg carol 10
((BG_STATUS == 5)) || fail "agent of a removed user: exit status $BG_STATUS: $(cat "$WORK/carol.log")"
log_has carol "BAD_CREDENTIALS.*user removed" || fail "removed user's agent does not say why"
log "ok: the agent of a removed user exited with status 5 ($(elapsed "$t0") s after 'user del')"

# Relay down: the cause and the next try are logged once (repeats collapsed), and the return.
stop_relay relay  # the relay below uses its data directory (and so its certificate)
LATER=$(free_port)
start_bg waiting "$SB_BIN" expose echo=127.0.0.1:9 --relay "127.0.0.1:$LATER" --fingerprint "$FP" \
  --user bob --password-file "$WORK/pw/bob"
wait_log waiting "cannot log in to the relay at 127.0.0.1:$LATER: .*refused.*; next try at [0-9:]{8} \(in [0-9.]+ s\)" 5
start_relay later "$DATA" "127.0.0.1:$LATER"
wait_log waiting "logged in to the relay at 127.0.0.1:$LATER again after [0-9]+ failed attempts" 40
attempts=$(grep -oE "again after [0-9]+ failed" "$WORK/waiting.log" | grep -oE "[0-9]+")
reports=$(grep -c "cannot log in to the relay" "$WORK/waiting.log")
((reports == 1)) || fail "$attempts failed attempts gave $reports log lines (expected 1 within a minute)"
log "ok: relay down: $attempts failed attempts logged in $reports line, and the return"
stop_agent waiting

stop_relay later
stop_relay plain
log "PASS"
