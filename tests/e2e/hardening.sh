#!/usr/bin/env bash
# Hardening with the real programs:
#  - text a peer sends (REJECT reasons, TERMINATE messages) reaches the terminal and the agent's
#    log escaped, never as control sequences;
#  - every switchboard-relay command but `serve` and `user add` refuses a data directory without
#    relay data ("no relay data in DIR", exit 1) and creates nothing;
#  - what the relay creates is its user's alone (directory 0700; users.db, its -wal and -shm, and
#    relay.key 0600), modes the operator chose stay, and a data directory or users.db that group
#    or others may read is warned about.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
umask 022 # the modes checked below must come from the programs, not from a strict umask

# expect_mode MODE PATH: `stat -c %a PATH` is MODE.
expect_mode() {
  local got
  got=$(stat -c %a "$2") || fail "cannot stat $2"
  [[ $got == "$1" ]] || fail "$2 has mode $got, expected $1"
}

# --- data directory: only serve and user add make one ----------------------------------------
TYPO="$WORK/typo"
printf 'pw\n' >"$WORK/pw/any"
for cmd in fingerprint "user list" "user del alice" "user passwd alice" "user allow alice bob" \
  "user max-lines alice 2"; do
  read -ra argv <<<"$cmd"
  expect_fail "typo-${cmd// /-}" "no relay data in $TYPO " timeout 30 "$RELAY_BIN" "${argv[@]}" \
    --data-dir "$TYPO" <"$WORK/pw/any"
  ((EXPECT_RC == 1)) || fail "'$cmd' on a missing data directory exited $EXPECT_RC, expected 1"
  [[ ! -e $TYPO ]] || fail "'$cmd' created $TYPO"
done
EMPTY="$WORK/empty"
mkdir "$EMPTY"
expect_fail empty-fingerprint "no relay data in $EMPTY \(no relay.crt" timeout 30 "$RELAY_BIN" \
  fingerprint --data-dir "$EMPTY"
expect_fail empty-user-list "no relay data in $EMPTY \(no users.db" timeout 30 "$RELAY_BIN" \
  user list --data-dir "$EMPTY"
[[ -z $(ls -A "$EMPTY") ]] || fail "commands on an empty data directory created: $(ls -A "$EMPTY")"
log "ok: fingerprint and user del/list/passwd/allow/max-lines create nothing and exit 1"

# --- what user add and serve create -----------------------------------------------------------
DATA="$WORK/new/data" # its parent is missing too
add_user "$DATA" alice alice-pw
expect_mode 700 "$DATA"
expect_mode 600 "$DATA/users.db"
expect_mode 600 "$DATA/relay.key"
expect_mode 644 "$DATA/relay.crt"
# user add made the certificate too, so the fingerprint can be handed out before the first serve.
expect_ok fingerprint-before-serve timeout 30 "$RELAY_BIN" fingerprint --data-dir "$DATA"
grep -qE '^([0-9A-F]{2}:){31}[0-9A-F]{2}$' "$WORK/fingerprint-before-serve.out" ||
  fail "fingerprint printed: $(cat "$WORK/fingerprint-before-serve.out")"
expect_ok user-list timeout 30 "$RELAY_BIN" user list --data-dir "$DATA"
grep -q "open to group or others" "$WORK/user-list.out" &&
  fail "warned about what the relay made itself: $(cat "$WORK/user-list.out")"

SERVED="$WORK/served"
start_relay tls "$SERVED" 127.0.0.1:0
add_user "$SERVED" alice alice-pw # a write from another process while the relay holds the file
for f in "$SERVED/users.db" "$SERVED/users.db-wal" "$SERVED/users.db-shm" "$SERVED/relay.key"; do
  expect_mode 600 "$f"
done
expect_mode 700 "$SERVED"
stop_relay tls
log "ok: new data directories are 0700; users.db, -wal, -shm and relay.key 0600"

# An operator's directory keeps its mode, with a warning; so does a users.db opened to others.
OPDIR="$WORK/operator"
mkdir -m 755 "$OPDIR"
expect_ok op-user-add timeout 60 "$RELAY_BIN" user add carol --data-dir "$OPDIR" \
  --password-file "$WORK/pw/any"
expect_mode 755 "$OPDIR"
grep -q "data directory $OPDIR is open to group or others (mode 755)" "$WORK/op-user-add.out" ||
  fail "no warning about a 0755 data directory: $(cat "$WORK/op-user-add.out")"
chmod 700 "$OPDIR"
chmod 644 "$OPDIR/users.db"
expect_ok op-user-list timeout 30 "$RELAY_BIN" user list --data-dir "$OPDIR"
expect_mode 644 "$OPDIR/users.db"
grep -q "file $OPDIR/users.db is open to group or others (mode 644)" "$WORK/op-user-list.out" ||
  fail "no warning about a 0644 users.db: $(cat "$WORK/op-user-list.out")"
grep -q "data directory" "$WORK/op-user-list.out" &&
  fail "warned about a 0700 directory: $(cat "$WORK/op-user-list.out")"
log "ok: modes the operator chose stay, with a warning when others may read"

# --- text from a peer -------------------------------------------------------------------------
# fixtures.py HOSTILE_TEXT as protocol::printable renders it.
ESCAPED='\x1b[2J\x1b]0;owned\x07|\u009b31m|\u202e|\nforged log line'
# expect_escaped FILE: FILE shows the hostile text escaped, and holds no control character
# (other than line ends), no C1 control and no bidi override.
expect_escaped() {
  grep -qF -- "$ESCAPED" "$1" || fail "$1 lacks the escaped peer text: $(cat -v "$1")"
  if LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80\xae' "$1"; then
    fail "$1 holds raw control characters: $(cat -v "$1")"
  fi
  if grep -q '^forged log line' "$1"; then fail "$1 holds a line forged by the peer"; fi
}

PLAIN="$WORK/plain"
start_relay plain "$PLAIN" 127.0.0.1:0 --plaintext
add_user "$PLAIN" alice alice-pw
add_user "$PLAIN" bob bob-pw
rm -f "$WORK/bob.ready"
start_bg bob "$PYTHON" "$FIXTURES" hostilepeer "$WORK/bob.ready" "$RELAY_ADDR" bob "$WORK/pw/bob"
_bob_ready() {
  bg_running bob || fail "the hostile peer exited: $(cat "$WORK/bob.log")"
  [[ -s $WORK/bob.ready ]]
}
wait_for 20 "the hostile peer to log in" _bob_ready

# REJECT(reason) reaches the caller as FAIL(message): pipe's last word.
expect_fail pipe-rejected "REJECTED" sb 30 alice pipe bob:reject </dev/null
expect_escaped "$WORK/pipe-rejected.out"
# TERMINATE(message) during the session: pipe's "session ... ended" line.
expect_fail pipe-terminated "ended: SERVICE_UNAVAILABLE" sb 30 alice pipe bob:terminate </dev/null
expect_escaped "$WORK/pipe-terminated.out"

# The agent's log: forwards to both services, one connection each.
FWD_REJECT=$(free_port)
FWD_TERMINATE=$(free_port)
start_agent fwd-reject alice forward bob:reject --listen "127.0.0.1:$FWD_REJECT"
start_agent fwd-terminate alice forward bob:terminate --listen "127.0.0.1:$FWD_TERMINATE"
for port in "$FWD_REJECT" "$FWD_TERMINATE"; do
  # Holds the connection until the forward closes it (after the peer's answer).
  timeout 20 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat <&3 >/dev/null' _ "$port" ||
    fail "connection to the forward on port $port"
done
wait_log fwd-reject "forward to bob:reject failed" 20
expect_escaped "$WORK/fwd-reject.log"
wait_log fwd-terminate "forward to bob:terminate failed" 20
expect_escaped "$WORK/fwd-terminate.log"
log "ok: REJECT reasons and TERMINATE messages are printed and logged escaped"

stop_agent fwd-reject
stop_agent fwd-terminate
stop_bg bob || true # the hostile peer ends on SIGTERM with Python's status
stop_relay plain
log "PASS"
