#!/usr/bin/env bash
# ssh through the relay with `switchboard pipe` as ProxyCommand, against a throwaway sshd (its own
# host key, config, authorized_keys and port on 127.0.0.1, run in the foreground as the current
# user). bob exposes it as bob:ssh; alice runs a command over it and moves a few MiB both ways,
# compared by SHA-256. Exits 77 (skipped) when no sshd can be started here.
#
# Run as root, sshd insists on its privilege separation directory /run/sshd. If that is missing,
# sshd runs in a private mount namespace with a tmpfs on /run that holds it (unshare), so the test
# creates nothing outside its temp dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

SSHD=/usr/sbin/sshd
[[ -x $SSHD ]] || skip "$SSHD not installed"
command -v ssh >/dev/null || skip "ssh client not installed"
command -v ssh-keygen >/dev/null || skip "ssh-keygen not installed"

ME=$(id -un)
S="$WORK/ssh"
mkdir -m 700 "$S"
ssh-keygen -q -t ed25519 -N '' -C sb-e2e-host -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -C sb-e2e-user -f "$S/user_key"
cp "$S/user_key.pub" "$S/authorized_keys"
SSHD_PORT=$(free_port)
cat >"$S/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSHD_PORT
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
AllowUsers $ME
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
EOF
"$SSHD" -t -f "$S/sshd_config" >"$WORK/sshd-check.log" 2>&1 || true
if [[ $(id -u) == 0 && ! -d /run/sshd ]] && grep -q "privilege separation directory" "$WORK/sshd-check.log"; then
  command -v unshare >/dev/null || skip "sshd needs /run/sshd (running as root) and unshare is missing"
  log "sshd: /run/sshd is missing; running sshd in a private mount namespace with its own /run"
  start_bg sshd unshare --mount --propagation private sh -c \
    'mount -t tmpfs -o mode=755 sb-e2e-run /run && mkdir -m 755 /run/sshd && exec "$1" -D -e -f "$2"' \
    sh "$SSHD" "$S/sshd_config"
else
  grep -v "^$" "$WORK/sshd-check.log" >&2 || true
  start_bg sshd "$SSHD" -D -e -f "$S/sshd_config"
fi
_sshd_up() { log_has sshd "Server listening on 127.0.0.1 port $SSHD_PORT" || ! bg_running sshd; }
wait_for 15 "sshd to listen" _sshd_up
if ! bg_running sshd || ! log_has sshd "Server listening"; then
  echo "sshd could not be started:" >&2
  cat "$WORK/sshd.log" >&2
  skip "no throwaway sshd here (see its output above)"
fi

SSH_OPTS=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile="$S/user_key"
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=20)
# The fixture itself must work directly, or this is not a test of the relay.
if ! direct=$(timeout 30 ssh "${SSH_OPTS[@]}" -p "$SSHD_PORT" "$ME@127.0.0.1" 'echo direct-ok' 2>"$WORK/direct.log") ||
  [[ $direct != direct-ok ]]; then
  cat "$WORK/direct.log" "$WORK/sshd.log" >&2
  skip "the throwaway sshd does not accept a direct login (see above)"
fi
log "sshd fixture on 127.0.0.1:$SSHD_PORT accepts $ME with the throwaway key"

DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
start_relay relay "$DATA" 127.0.0.1:0
start_agent bob bob expose "ssh=127.0.0.1:$SSHD_PORT"

# `switchboard pipe` reads its password from --password-file (stdin carries the ssh stream). A
# wrapper records pipe's exit status (one file per run): ssh ends its ProxyCommand with SIGHUP,
# which the wrapper passes on, as ssh would have sent it to pipe itself.
cat >"$S/proxy.sh" <<'WRAP'
#!/usr/bin/env bash
exec 3<&0
"$@" <&3 3<&- &
child=$!
trap 'kill -HUP "$child" 2>/dev/null' HUP
for ((i = 0; i < 100; i++)); do
  rc=0
  wait "$child" || rc=$?
  kill -0 "$child" 2>/dev/null || break  # else wait was cut short by the trap
done
echo "$rc" >"$(mktemp "$PIPE_STATUS_DIR/status.XXXXXX")"
exit "$rc"
WRAP
chmod +x "$S/proxy.sh"
export PIPE_STATUS_DIR="$WORK/pipe-status"
mkdir -p "$PIPE_STATUS_DIR"
printf -v PROXY '%q ' "$S/proxy.sh" timeout 120 "$SB_BIN" pipe bob:ssh "${SB_CONN[@]}" \
  --user alice --password-file "$WORK/pw/alice" --log-level warn
VIA_RELAY=("${SSH_OPTS[@]}" -o "ProxyCommand=$PROXY" -p 22 "$ME@bob")

out=$(timeout 60 ssh "${VIA_RELAY[@]}" 'echo hello-through-relay' 2>"$WORK/ssh1.log") ||
  fail "ssh through the relay failed: $(cat "$WORK/ssh1.log")"
[[ $out == hello-through-relay ]] || fail "ssh through the relay printed '$out'"
log "ssh -o ProxyCommand='switchboard pipe bob:ssh ...' ran a remote command: '$out'"

# Upload: the remote sha256sum of what we send on stdin.
head -c $((4 * 1024 * 1024 + 777)) /dev/urandom >"$S/up.bin"
want=$(sha256sum <"$S/up.bin" | cut -d' ' -f1)
t0=$(now)
got=$(timeout 120 ssh "${VIA_RELAY[@]}" 'sha256sum' <"$S/up.bin" 2>"$WORK/ssh2.log" | cut -d' ' -f1) ||
  fail "upload through the relay failed: $(cat "$WORK/ssh2.log")"
[[ $got == "$want" ]] || fail "upload: remote sha256 $got, local $want"
log "upload of 4 MiB over ssh through the relay intact ($(elapsed "$t0") s)"

# Download: a remote file streamed back.
head -c $((6 * 1024 * 1024 + 333)) /dev/urandom >"$S/down.bin"
want=$(sha256sum <"$S/down.bin" | cut -d' ' -f1)
t0=$(now)
got=$(timeout 120 ssh "${VIA_RELAY[@]}" "cat $(printf %q "$S/down.bin")" </dev/null 2>"$WORK/ssh3.log" |
  sha256sum | cut -d' ' -f1)
[[ $got == "$want" ]] || fail "download: got sha256 $got, remote file has $want: $(cat "$WORK/ssh3.log")"
log "download of 6 MiB over ssh through the relay intact ($(elapsed "$t0") s)"

log_has sshd "Accepted publickey for $ME" || fail "sshd log shows no accepted login"

# Each ssh logout ended pipe with status 0, and the device saw normal ends, not PEER_LOST.
_all_recorded() { (($(find "$PIPE_STATUS_DIR" -type f | wc -l) == 3)); }
wait_for 10 "the three pipe exit statuses" _all_recorded
statuses=$(cat "$PIPE_STATUS_DIR"/status.* | sort | uniq -c | tr -s ' ' | tr '\n' ';')
[[ $statuses == " 3 0;" ]] || fail "pipe exit statuses after ssh logouts: $statuses (expected 3 x 0)"
_three_ended() { (($(grep -c "session from alice for 'ssh' ended" "$WORK/bob.log") == 3)); }
wait_for 10 "three normal session ends in the device's log" _three_ended
if grep -E "warn" "$WORK/bob.log" | grep -q .; then
  fail "the device logged warnings for normal ssh logouts: $(grep -E "warn" "$WORK/bob.log")"
fi
log "ok: three ssh logouts: pipe exited 0 each time, the device logged three normal ends"
stop_agent bob
stop_relay relay
stop_bg sshd || true
log "PASS"
