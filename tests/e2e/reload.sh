#!/usr/bin/env bash
# SIGHUP (docs/configuration.md "Reloading"): a running relay reloads its --config file and its
# certificate, agents reload their services and forwards, and none of them dies. Also the relay's
# session-end line with the bytes each way (docs/configuration.md "Logs").
#   1. bob (`agent --config`) serves echo, alice (`agent --config`) forwards a port to it; a `pipe`
#      call of 1000 bytes shows in the relay's log as one session-end line with 1000 bytes each way.
#   2. bob's file gains echo2, alice's loses its forward and gains another: after SIGHUP echo2
#      answers, the old forward's port is closed and the new one forwards.
#   3. The relay's file gets another certificate, a shorter login deadline and another number of
#      forwarding threads: after SIGHUP a new connection gets the new certificate (the old
#      fingerprint is refused), a connection that does not log in is closed within the new
#      deadline, and the thread count is named in a warning as needing a restart.
#   4. A broken file: the relay and bob log the error and go on as before.
#   5. `expose` without --config logs that there is nothing to reload.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

DATA=$WORK/data
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
add_user "$DATA" carol carol-pw

# new_cert NAME: a self-signed P-256 certificate and key as $WORK/NAME.crt and .key; prints its
# fingerprint.
new_cert() {
  timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=relay-$1" -keyout "$WORK/$1.key" -out "$WORK/$1.crt" 2>/dev/null ||
    fail "openssl could not make a certificate"
  chmod 600 "$WORK/$1.key"
  openssl x509 -noout -fingerprint -sha256 -in "$WORK/$1.crt" | sed 's/.*=//'
}
FP_A=$(new_cert a)
FP_B=$(new_cert b)

# relay_toml CERT LOGIN_MS [LIMITS...]: the relay's configuration file.
relay_toml() {
  cat >"$WORK/relay.toml" <<EOF
cert_file = "$WORK/$1.crt"
key_file = "$WORK/$1.key"
[timeouts]
login_ms = $2
[limits]
${3:-}
EOF
}
relay_toml a 10000
start_relay relay "$DATA" 127.0.0.1:0 --config "$WORK/relay.toml"
# start_relay read the data directory's own certificate; the relay serves cert_file.
SB_CONN=(--relay "$RELAY_ADDR" --fingerprint "$FP_A")

start_fixture echo echo
ECHO_PORT=$FIXTURE_PORT
cat >"$WORK/bob.toml" <<EOF
[services]
echo = "127.0.0.1:$ECHO_PORT"
EOF
P1=$(free_port)
P2=$(free_port)
forward_toml() {
  cat >"$WORK/alice.toml" <<EOF
[[forward]]
peer = "bob"
service = "echo"
listen = "127.0.0.1:$1"
EOF
}
forward_toml "$P1"
start_agent bob bob agent --config "$WORK/bob.toml"
start_agent alice alice agent --config "$WORK/alice.toml"
wait_log alice "forwarding 127.0.0.1:$P1 to bob:echo" 10

# echo_through PORT: 200 bytes through a local forwarded port come back.
echo_through() {
  timeout 20 "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
data = b"r" * 200
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
sys.exit(0 if got == data else 1)
EOF
}
# hup NAME: SIGHUP to background process NAME's program itself. `timeout`, which runs it, forwards
# only the first SIGHUP it gets (it then ignores the signal, having sent it to its own group).
hup() {
  local child
  child=$(ps -o pid= --ppid "${BG_PID[$1]}" | tr -d ' ')
  [[ $child =~ ^[0-9]+$ ]] || fail "hup: no program under '$1'"
  kill -HUP "$child"
}
port_closed() { ! timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# --- 1. session-end line ---------------------------------------------------------------------
BYTES=$(head -c 1000 /dev/zero | tr '\0' 'x')
out=$(printf '%s' "$BYTES" | sb 20 alice pipe bob:echo --log-level warn 2>>"$WORK/calls.log") ||
  fail "pipe call to bob:echo failed"
[[ $out == "$BYTES" ]] || fail "echo returned ${#out} bytes, not 1000"
wait_log relay "session [0-9]+ ended: alice -> bob:echo, 1000 bytes to target, 1000 bytes to caller, [0-9.]+ s, by " 10
log "ok: $(grep -m1 -oE 'session [0-9]+ ended: .*' "$WORK/relay.log")"
echo_through "$P1" || fail "forward on $P1 does not echo"

# --- 2. agents reload services and forwards --------------------------------------------------
cat >>"$WORK/bob.toml" <<EOF
echo2 = "127.0.0.1:$ECHO_PORT"
EOF
forward_toml "$P2"
hup bob
hup alice
wait_log bob "reloaded: services added \[echo2\]" 10
wait_log alice "reloaded: .*forwards added 1, removed 1" 10
call_echo alice bob:echo2 "hello-echo2" || fail "added service bob:echo2 does not answer"
wait_for 10 "the removed forward's port $P1 to close" port_closed "$P1"
echo_through "$P2" || fail "added forward on $P2 does not echo"
log "ok: agents reloaded: bob:echo2 answers, port $P1 closed, port $P2 forwards"

# --- 3. relay reloads its certificate and limits ---------------------------------------------
relay_toml b 2500 "forward_threads = 7"
hup relay
wait_log relay "reloaded: .*timeouts.login_ms 10000 -> 2500.*certificate fingerprint" 10
log_has relay "limits.forward_threads [0-9]+ -> 7 needs a restart" ||
  fail "the relay did not name the forward_threads change as needing a restart"
echo "connect_timeout_ms = 2000" >"$WORK/quick.toml"
expect_ok peers-new timeout 20 "$SB_BIN" peers --config "$WORK/quick.toml" --relay "$RELAY_ADDR" \
  --fingerprint "$FP_B" --user alice --password-file "$WORK/pw/alice"
cut -f1 "$WORK/peers-new.out" | grep -qx bob || fail "peers with the new fingerprint did not list bob"
expect_fail peers-old "." timeout 30 "$SB_BIN" peers --config "$WORK/quick.toml" \
  --relay "$RELAY_ADDR" --fingerprint "$FP_A" --user alice --password-file "$WORK/pw/alice"
log "ok: a new connection gets the new certificate"
SB_CONN=(--relay "$RELAY_ADDR" --fingerprint "$FP_B")
# A connection that never logs in is closed within 8 s: the new 2.5 s deadline, not the old 10 s
# (it took about 4 s on a loaded 2-core machine).
t0=$(now)
timeout 20 "$PYTHON" - "$RELAY_PORT" <<'EOF' || fail "an idle connection was not closed within 8 s"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
while s.recv(4096):
    pass
EOF
log "ok: an idle connection was closed after $(elapsed "$t0") s (login_ms 2500)"
# Lines opened before the change keep theirs: bob (old fingerprint) still answers.
call_echo alice bob:echo "still-here" || fail "bob's open lines stopped answering after the reload"

# --- 4. broken files change nothing ----------------------------------------------------------
echo 'login_ms = [' >"$WORK/relay.toml"
echo '[services' >"$WORK/bob.toml"
hup relay
hup bob
wait_log relay "reload failed, nothing changed" 10
wait_log bob "reload failed, nothing changed" 10
call_echo alice bob:echo2 "after-broken" || fail "bob:echo2 stopped answering after a broken reload"

# --- 5. nothing to reload ------------------------------------------------------------------------
start_agent carol-expose carol expose "other=127.0.0.1:$ECHO_PORT"
hup carol-expose
wait_log carol-expose "nothing to reload" 10

for p in relay bob alice carol-expose; do bg_running "$p" || fail "$p died on SIGHUP"; done
stop_agent carol-expose
stop_agent alice
stop_agent bob
stop_relay relay
log "PASS"
