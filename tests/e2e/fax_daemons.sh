#!/usr/bin/env bash
# Two software fax machines with the real programs: a relay, `switchboard-fax daemon` for alice and
# for bob (each on its own spool). `switchboard-fax send --to bob --wait` at alice exits 0, bob's
# `inbox` lists the fax from alice, alice's `jobs` shows it done. Then a multi-page job is queued,
# alice's daemon is killed (SIGKILL) while the job is queued or running, and a restarted daemon on
# the same spool finishes it. Then a fax to a raw T.38/TCP address that is `switchboard forward
# bob:fax`, and one to bob's own raw T.38/TCP listener (--t38-listen), outside the relay.
#   $1 switchboard-relay, $2 switchboard, $3 switchboard-fax
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

[[ $# -ge 3 ]] || fail "usage: $0 RELAY SWITCHBOARD SWITCHBOARD-FAX"
FAX_BIN=$(realpath "$3")

DATA="$WORK/data"
add_user "$DATA" alice alice-pw
add_user "$DATA" bob bob-pw
start_relay relay "$DATA" 127.0.0.1:0 --plaintext

# fax SECONDS USER SUBCOMMAND [ARGS...]: switchboard-fax on USER's spool ($WORK/spool-USER).
fax() {
  local secs=$1 user=$2
  shift 2
  local argv=(timeout -k 60 "$secs" "$FAX_BIN" "$@" --spool "$WORK/spool-$user")
  if [[ ${BG_EXEC:-0} == 1 ]]; then exec "${argv[@]}"; fi
  "${argv[@]}"
}

# The daemon of USER as background process NAME; waits until the relay saw it log in.
logins_of() { grep -cE "$1/line#[0-9]+: logged in from" "$WORK/relay.log" 2>/dev/null || true; }
start_fax_daemon() {
  local name=$1 user=$2 before
  shift 2
  before=$(logins_of "$user")
  start_bg "$name" fax "$BG_LIMIT" "$user" daemon "${SB_CONN[@]}" --user "$user" \
    --password-file "$WORK/pw/$user" --ident "+1 555 $user" "$@"
  _daemon_in() {
    bg_running "$name" || fail "daemon '$name' exited during start-up"
    (($(logins_of "$user") > before))
  }
  wait_for 30 "$user's fax daemon to log in" _daemon_in
  log "fax daemon '$name' of $user logged in"
}

# add_user_live USER PASSWORD: a user added while the relay runs (the store is shared, WAL).
add_user_live() { add_user "$DATA" "$1" "$2"; }

# Documents: grayscale PNGs without pHYs (scaled to the fax width), a different pattern each.
"$PYTHON" - "$WORK" <<'EOF'
import struct, sys, zlib
def png(path, seed, w=400, h=500):
    rows = b""
    for y in range(h):
        row = bytes(0 if ((x // (8 + seed) + y // (10 + seed)) % 2 == 0 and (x + y + seed) % 97 > 20)
                    else 255 for x in range(w))
        rows += b"\0" + row
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
for i in range(6):
    png(f"{sys.argv[1]}/page{i}.png", i)
EOF

start_fax_daemon bob bob
start_fax_daemon alice1 alice
# SIGHUP does not stop a daemon (it has nothing to reload and says so).
signal_bg bob HUP
wait_log bob "SIGHUP: the fax daemon has nothing to reload" 10

# --- one job, --wait ----------------------------------------------------------------------------
t0=$(now)
out=$(fax 120 alice send --to bob --wait --retry-interval 1 "$WORK/page0.png" 2>>"$WORK/send.log") ||
  fail "send --wait exited with $? (output: $out)"
JOB1=$(head -n1 <<<"$out")
[[ $JOB1 =~ ^[0-9]+$ ]] || fail "send printed '$out', not a job ID"
log "FIGURE: job $JOB1 (1 page) done in $(elapsed "$t0") s"
fax 30 alice jobs >"$WORK/jobs1.out" || fail "jobs exited with $?"
grep -qE "^$JOB1	bob	done	1/1	" "$WORK/jobs1.out" || fail "jobs does not show job $JOB1 done: $(cat "$WORK/jobs1.out")"
_inbox_has() {
  fax 30 bob inbox >"$WORK/inbox.out" && (($(grep -cE "	alice	.*	1	fine	" "$WORK/inbox.out") >= $1))
}
# The inbox entry is committed after the call ends (rendering PDF and PNG): allow a moment.
_one() { _inbox_has 1; }
wait_for 20 "bob's inbox to list the fax from alice" _one
log "bob's inbox lists the fax from alice"

# --- a daemon killed with a job in the queue ----------------------------------------------------
out=$(fax 60 alice send --to bob --retry-interval 1 "$WORK"/page{0..5}.png 2>>"$WORK/send.log") ||
  fail "send exited with $?"
JOB2=$(head -n1 <<<"$out")
[[ $JOB2 =~ ^[0-9]+$ ]] || fail "send printed '$out', not a job ID"
# Kill as soon as the daemon works on it (or at once if it has not picked it up yet).
_picked() { fax 30 alice jobs | grep -qE "^$JOB2	bob	(running|done)	"; }
for ((i = 0; i < 100; i++)); do _picked && break; sleep 0.1; done
signal_bg alice1 KILL
wait_bg alice1 10
# The daemon itself is gone, not only the `timeout` that ran it: its process group is empty.
_group_gone() { ! pgrep -g "${BG_PID[alice1]}" >/dev/null; }
wait_for 10 "alice's first daemon (process group ${BG_PID[alice1]}) to be gone" _group_gone
fax 30 alice jobs >"$WORK/jobs2.out" || fail "jobs exited with $?"
state=$(awk -F'\t' -v id="$JOB2" '$1 == id { print $3 " " $4 }' "$WORK/jobs2.out")
log "job $JOB2 after SIGKILL of alice's daemon: $state"
start_fax_daemon alice2 alice
_job2_done() { fax 30 alice jobs | grep -qE "^$JOB2	bob	done	6/6	"; }
wait_for 120 "job $JOB2 to be done after the restart" _job2_done
_two() { _inbox_has 1 && (($(grep -cE "	alice	" "$WORK/inbox.out") >= 2)); }
wait_for 20 "bob's inbox to list the second fax" _two
log "job $JOB2 resumed by the restarted daemon and done ($state at the kill)"

# --- a raw T.38/TCP address through `switchboard forward bob:fax` ------------------------------
# alice's daemon places the fax to a plain T.38/TCP address; that address is a forwarded port
# whose agent (a call-only instance of carol) calls bob:fax through the relay.
add_user_live carol carol-pw
FWD_PORT=$(free_port)
start_agent fwd carol forward bob:fax --listen "127.0.0.1:$FWD_PORT"
wait_log fwd "forwarding 127.0.0.1:$FWD_PORT to bob:fax" 10
out=$(fax 120 alice send --to "t38:127.0.0.1:$FWD_PORT" --wait --retry-interval 1 "$WORK/page2.png" \
  2>>"$WORK/send.log") || fail "send to t38:127.0.0.1:$FWD_PORT (forward bob:fax) exited with $?"
_three() { fax 30 bob inbox >"$WORK/inbox.out" && (($(grep -cE "	carol	.*	1	fine	" "$WORK/inbox.out") >= 1)); }
wait_for 20 "bob's inbox to list the fax that came through carol's forward" _three
log "a raw T.38/TCP call into 'switchboard forward bob:fax' reached bob's fax machine"
stop_agent fwd

# --- bob's raw T.38/TCP listener, outside the relay ----------------------------------------------
stop_bg bob || fail "bob's daemon exited with status $? on SIGTERM (expected 0)"
start_fax_daemon bob2 bob --t38-listen 127.0.0.1:0
wait_log bob2 "accepting raw T.38/TCP calls on 127.0.0.1:[0-9]+" 10
RAW_PORT=$(grep -oE "accepting raw T.38/TCP calls on 127.0.0.1:[0-9]+" "$WORK/bob2.log" | grep -oE "[0-9]+$")
out=$(fax 120 alice send --to "t38:127.0.0.1:$RAW_PORT" --wait --retry-interval 1 "$WORK/page3.png" \
  2>>"$WORK/send.log") || fail "send to bob's raw T.38 listener exited with $?"
_four() { fax 30 bob inbox >"$WORK/inbox.out" && grep -qE "	t38:127.0.0.1:[0-9]+	.*	1	fine	" "$WORK/inbox.out"; }
wait_for 20 "bob's inbox to list the raw T.38 fax" _four
log "a raw T.38/TCP call from alice's daemon reached bob's --t38-listen"

# Bad destinations are refused before anything is queued.
if fax 30 alice send --to "t38:nohost" "$WORK/page0.png" 2>"$WORK/bad.err"; then
  fail "send --to t38:nohost was accepted"
fi
grep -q "t38:nohost\|nohost" "$WORK/bad.err" || fail "no clear error for t38:nohost: $(cat "$WORK/bad.err")"

stop_bg alice2 || fail "alice's daemon exited with status $? on SIGTERM (expected 0)"
stop_bg bob2 || fail "bob's daemon exited with status $? on SIGTERM (expected 0)"
stop_relay relay
log "PASS"
