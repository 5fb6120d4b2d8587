#!/usr/bin/env bash
# The main job, in one command: build, start a relay on its embedded SQLite store (TLS, self-signed
# certificate), log in two devices, and reach one device's web service from the other through the
# relay. Everything runs on loopback and is stopped at the end (only the processes started here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target switchboard switchboard-relay >/dev/null
BIN=$PWD/build/release/apps
WORK=$(mktemp -d /tmp/switchboard-demo.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: stopped; logs are in $WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Create two users in the relay's SQLite store ($WORK/data/users.db)"
echo "alice-secret" | "$BIN/switchboard-relay" user add alice --data-dir "$WORK/data"
echo "bob-secret" | "$BIN/switchboard-relay" user add bob --data-dir "$WORK/data"
"$BIN/switchboard-relay" user list --data-dir "$WORK/data"

say "2. Start the relay (TLS 1.3 with a self-signed certificate made on first start)"
"$BIN/switchboard-relay" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 \
  --port-file "$WORK/relay.port" >"$WORK/relay.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/relay.port" ] && break; sleep 0.1; done
RELAY=127.0.0.1:$(cat "$WORK/relay.port")
FP=$("$BIN/switchboard-relay" fingerprint --data-dir "$WORK/data")
echo "relay at $RELAY, certificate fingerprint $FP"

say "3. Device bob (behind NAT, dials out only) exposes a local web server as service 'web'"
mkdir -p "$WORK/site" && echo "<h1>Hello from bob's private network</h1>" >"$WORK/site/index.html"
WEB=$(free_port)
python3 -m http.server "$WEB" --bind 127.0.0.1 --directory "$WORK/site" >"$WORK/web.log" 2>&1 &
PIDS+=($!)
SWITCHBOARD_PASSWORD=bob-secret "$BIN/switchboard" expose web=127.0.0.1:$WEB \
  --relay "$RELAY" --user bob --fingerprint "$FP" --log-level warn &
PIDS+=($!)

say "4. Device alice forwards a local port to bob:web through the relay"
LOCAL=$(free_port)
SWITCHBOARD_PASSWORD=alice-secret "$BIN/switchboard" forward bob:web --listen 127.0.0.1:$LOCAL \
  --relay "$RELAY" --user alice --fingerprint "$FP" --log-level warn &
PIDS+=($!)
sleep 1.5

say "5. alice asks the relay who she may call"
SWITCHBOARD_PASSWORD=alice-secret "$BIN/switchboard" peers --relay "$RELAY" --user alice --fingerprint "$FP" --log-level warn

say "6. curl http://127.0.0.1:$LOCAL/ on alice's side reaches bob's web server"
for i in 1 2 3; do curl -sS -m 5 "http://127.0.0.1:$LOCAL/"; done

say "7. What the relay saw (login, demand, pairing, release, reuse of the same lines)"
grep -E "logged in|demand|paired|released" "$WORK/relay.log" | cut -c25- | head -20
echo
echo "demo: done. Try it by hand: the five-minute guide in README.md"
