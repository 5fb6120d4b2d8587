#!/usr/bin/env bash
# Bulk transfer, both ways at once, through one session: alice runs `switchboard pipe bob:bulk` with
# a 1 GiB random file on stdin and its stdout into sha256sum; bob's service (fixtures.py sinksource)
# hashes everything it receives and at the same time sends its own 1 GiB random file back. Both
# SHA-256 digests and byte counts must match. Plaintext relay with 1 GiB (SB_E2E_BULK_MIB), then
# TLS with 64 MiB (SB_E2E_BULK_TLS_MIB); 0 leaves a variant out (CTest runs the 1 GiB one as
# e2e_bulk_1gib, labelled heavy, and the TLS one as e2e_bulk_tls). Throughput is printed, never
# asserted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

PLAIN_MIB=${SB_E2E_BULK_MIB:-1024}
TLS_MIB=${SB_E2E_BULK_TLS_MIB:-64}

# bulk MODE MIB [relay options...]
bulk() {
  local mode=$1 mib=$2
  shift 2
  local bytes=$((mib * 1024 * 1024)) data="$WORK/data-$mode"
  local up="$WORK/alice-$mode.bin" down="$WORK/bob-$mode.bin"
  log "$mode: generating 2 x $mib MiB of random data"
  head -c "$bytes" /dev/urandom >"$up"
  head -c "$bytes" /dev/urandom >"$down"
  local up_sha down_sha
  up_sha=$(sha256sum "$up" | cut -d' ' -f1)
  down_sha=$(sha256sum "$down" | cut -d' ' -f1)

  add_user "$data" alice "alice-$mode"
  add_user "$data" bob "bob-$mode"
  start_relay "relay-$mode" "$data" 127.0.0.1:0 "$@"
  start_fixture "svc-$mode" sinksource "$down" "$WORK/received-by-bob-$mode.txt"
  start_agent "bob-$mode" bob expose "bulk=127.0.0.1:$FIXTURE_PORT"

  log "$mode: $mib MiB each way through bob:bulk ..."
  local t0 secs rc=0
  t0=$(now)
  sb 900 alice pipe bob:bulk --log-level warn <"$up" 2>"$WORK/pipe-$mode.log" |
    sha256sum >"$WORK/received-by-alice-$mode.txt" || rc=$?
  secs=$(elapsed "$t0")
  ((rc == 0)) || fail "$mode: switchboard pipe failed (exit $rc): $(cat "$WORK/pipe-$mode.log")"

  _bob_done() { [[ -s $WORK/received-by-bob-$mode.txt ]]; }
  wait_for 60 "bob's service to report what it received" _bob_done
  local got_alice got_bob got_bob_bytes
  got_alice=$(cut -d' ' -f1 <"$WORK/received-by-alice-$mode.txt")
  read -r got_bob got_bob_bytes <"$WORK/received-by-bob-$mode.txt"
  [[ $got_bob_bytes == "$bytes" ]] || fail "$mode: bob received $got_bob_bytes bytes, alice sent $bytes"
  [[ $got_bob == "$up_sha" ]] || fail "$mode: alice->bob digest differs: sent $up_sha, bob got $got_bob"
  [[ $got_alice == "$down_sha" ]] ||
    fail "$mode: bob->alice digest differs: bob sent $down_sha, alice got $got_alice"
  log "$mode: both directions intact (SHA-256 alice->bob $up_sha, bob->alice $down_sha)"
  log "FIGURE $mode: $mib MiB each way at once in $secs s: $(mib_per_s "$bytes" "$secs") MiB/s per" \
    "direction, $(mib_per_s $((2 * bytes)) "$secs") MiB/s total (debug builds are slower)"

  rm -f "$up" "$down"
  stop_agent "bob-$mode"
  stop_relay "relay-$mode"
  stop_bg "svc-$mode" || true
}

((PLAIN_MIB > 0 || TLS_MIB > 0)) || fail "SB_E2E_BULK_MIB and SB_E2E_BULK_TLS_MIB are both 0"
((PLAIN_MIB == 0)) || bulk plaintext "$PLAIN_MIB" --plaintext
((TLS_MIB == 0)) || bulk tls "$TLS_MIB"
log "PASS"
