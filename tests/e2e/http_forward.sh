#!/usr/bin/env bash
# HTTP through the relay: bob exposes a local web server as bob:web, alice forwards a local port to
# it, curl fetches generated files through that port several times (sequentially and in parallel)
# and the content must be identical. Once over TLS (self-signed, pinned fingerprint), once with
# --plaintext on both ends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

mkdir -p "$WORK/site"
echo "<h1>hello from bob's private network</h1>" >"$WORK/site/index.html"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$WORK/site/blob.bin"
WEB_PORT=$(free_port)
start_bg web "$PYTHON" -m http.server "$WEB_PORT" --bind 127.0.0.1 --directory "$WORK/site"
_web_up() { curl -s -o /dev/null -m 2 "http://127.0.0.1:$WEB_PORT/index.html"; }
wait_for 20 "python http.server on $WEB_PORT" _web_up

# fetch PORT PATH OUT: one GET through the forwarded port, with a bounded time.
fetch() {
  timeout 30 curl -sS --fail -m 25 -o "$3" "http://127.0.0.1:$1/$2"
}

run_mode() {
  local mode=$1
  shift
  local data="$WORK/data-$mode"
  add_user "$data" alice "alice-pw-$mode"
  add_user "$data" bob "bob-pw-$mode"
  start_relay "relay-$mode" "$data" 127.0.0.1:0 "$@"
  # Eight vacant lines: a demand finding none of bob's lines vacant fails at once with TARGET_BUSY
  # (by design, docs/protocol.md §4), so bob keeps as many ready as we fetch in parallel below.
  start_agent "bob-$mode" bob expose "web=127.0.0.1:$WEB_PORT" --vacant-lines 8
  local local_port
  local_port=$(free_port)
  start_agent "alice-$mode" alice forward bob:web --listen "127.0.0.1:$local_port"
  wait_log "alice-$mode" "forwarding 127.0.0.1:$local_port to bob:web" 10

  local i t0
  t0=$(now)
  for i in 1 2 3 4 5; do
    fetch "$local_port" index.html "$WORK/index.$mode.$i" || fail "$mode: GET #$i index.html failed"
    cmp -s "$WORK/site/index.html" "$WORK/index.$mode.$i" || fail "$mode: index.html #$i differs"
    fetch "$local_port" blob.bin "$WORK/blob.$mode.$i" || fail "$mode: GET #$i blob.bin failed"
    cmp -s "$WORK/site/blob.bin" "$WORK/blob.$mode.$i" || fail "$mode: blob.bin #$i differs"
    rm -f "$WORK/blob.$mode.$i"
  done
  log "$mode: 5 x (index.html + 3 MiB blob) sequentially, content identical ($(elapsed "$t0") s)"

  # Eight at once: sessions run side by side on separate lines.
  local pids=() pid bad=0
  t0=$(now)
  for i in $(seq 1 8); do
    fetch "$local_port" blob.bin "$WORK/par.$mode.$i" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || bad=$((bad + 1)); done
  ((bad == 0)) || fail "$mode: $bad of 8 parallel GETs failed"
  for i in $(seq 1 8); do
    cmp -s "$WORK/site/blob.bin" "$WORK/par.$mode.$i" || fail "$mode: parallel blob #$i differs"
  done
  rm -f "$WORK/par.$mode".*
  log "$mode: 8 parallel GETs of the blob, content identical ($(elapsed "$t0") s)"

  # The relay paired and released sessions, and nothing failed on the way.
  log_has "relay-$mode" "paired with" || fail "$mode: relay log shows no paired session"
  if log_has "alice-$mode" "forward to bob:web failed"; then fail "$mode: a forwarded connection failed"; fi

  stop_agent "alice-$mode"
  stop_agent "bob-$mode"
  stop_relay "relay-$mode"
}

run_mode tls
run_mode plaintext --plaintext
log "PASS"
