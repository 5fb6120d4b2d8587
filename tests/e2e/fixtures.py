#!/usr/bin/env python3
"""Test fixtures for the e2e scripts: local services and clients, loopback only, bounded in time.

  fixtures.py echo PORT_FILE                      asyncio echo server (keeps half-close)
  fixtures.py sinksource PORT_FILE SEND_FILE DIGEST_FILE
        per connection: sends SEND_FILE then half-closes, and at the same time reads everything
        the client sends; appends "<sha256> <bytes>" of what it received to DIGEST_FILE
  fixtures.py clients PORT COUNT SIZE TIMEOUT_S   COUNT concurrent connections, each sends SIZE
        random bytes, half-closes and expects them echoed; exits 0 only if all succeed
  fixtures.py clients PORT COUNT SIZE TIMEOUT_S hold   the same, but each keeps its session open
        until every client has its echo back (COUNT sessions open at once), then half-closes
  fixtures.py tlsalert PORT_FILE                  answers a client's first bytes with a TLS alert
  fixtures.py slowcat LINES INTERVAL_S             prints LINES numbered lines, one per interval
  fixtures.py hostilepeer READY_FILE HOST:PORT USER PASSWORD_FILE
        a device on a --plaintext relay, speaking the wire protocol itself: answers each call
        for service "reject" with REJECT(REJECTED, HOSTILE_TEXT), and each call for "terminate"
        with ACCEPT, then TERMINATE(SERVICE_UNAVAILABLE, HOSTILE_TEXT) and RELEASE
"""
import asyncio
import hashlib
import os
import resource
import socket
import sys
import threading
import time


def write_port(port_file, port):
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, port_file)  # atomic: readers never see a partial file


async def echo_server(port_file):
    async def handle(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    write_port(port_file, server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def sinksource(port_file, send_file, digest_file):
    lock = threading.Lock()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    write_port(port_file, srv.getsockname()[1])

    def serve(conn):
        def receive():
            h = hashlib.sha256()
            n = 0
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            while True:
                k = conn.recv_into(buf)
                if k == 0:
                    break
                h.update(view[:k])
                n += k
            with lock, open(digest_file, "a") as f:
                f.write(f"{h.hexdigest()} {n}\n")

        def send():
            with open(send_file, "rb") as f:
                conn.sendfile(f)
            conn.shutdown(socket.SHUT_WR)

        threads = [threading.Thread(target=receive), threading.Thread(target=send)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conn.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


async def clients(port, count, size, timeout_s, hold=False):
    """count clients at once, each sends `size` random bytes and must get them back. With `hold`,
    every client keeps its session open until all have their echo: `count` sessions at once."""
    all_echoed = asyncio.Event()
    echoed = 0
    peak = 0
    open_now = 0

    async def one(i):
        nonlocal echoed, peak, open_now
        payload = os.urandom(size)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        open_now += 1
        peak = max(peak, open_now)
        try:
            async def send():
                writer.write(payload)
                await writer.drain()
                if not hold:
                    writer.write_eof()

            async def receive():
                chunks = []
                total = 0
                while not hold or total < size:
                    data = await reader.read(65536)
                    if not data:
                        break
                    chunks.append(data)
                    total += len(data)
                return b"".join(chunks)

            _, got = await asyncio.gather(send(), receive())
            if hold:
                echoed += 1
                if echoed == count:
                    all_echoed.set()
                await all_echoed.wait()
                writer.write_eof()
                rest = await reader.read()
                got += rest
            if got != payload:
                return f"client {i}: echo differs (sent {len(payload)} bytes, got {len(got)})"
            return None
        finally:
            open_now -= 1
            writer.close()

    async def guarded(i):
        try:
            return await one(i)
        except Exception as e:  # reported, not raised: every client gets a verdict
            return f"client {i}: {type(e).__name__}: {e}"

    start = time.monotonic()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(guarded(i) for i in range(count))), timeout_s)
    except asyncio.TimeoutError:
        print(f"clients: not all {count} sessions finished within {timeout_s} s "
              f"({echoed} echoed)", file=sys.stderr)
        return 1
    failures = [r for r in results if r]
    elapsed = time.monotonic() - start
    for f in failures[:20]:
        print(f, file=sys.stderr)
    print(f"clients: {count - len(failures)}/{count} sessions echoed {size} bytes correctly "
          f"in {elapsed:.2f} s" + (f", {peak} open at once" if hold else ""))
    return 0 if not failures else 1


def slowcat(lines, interval):
    for i in range(1, lines + 1):
        sys.stdout.write(f"line {i}\n")
        sys.stdout.flush()
        if i < lines:
            time.sleep(interval)


# Text a peer may send (docs/protocol.md: "UTF-8 ... for people"), with what a terminal acts on:
# clear screen, window title (OSC), C1 CSI as UTF-8, a right-to-left override, a forged log line.
HOSTILE_TEXT = b"\x1b[2J\x1b]0;owned\x07|\xc2\x9b31m|\xe2\x80\xae|\nforged log line"


def hostile_peer(ready_file, relay, user, password_file):
    import select
    import struct
    host, port = relay.rsplit(":", 1)
    with open(password_file, "rb") as f:
        password = f.read().rstrip(b"\r\n")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.settimeout(120)  # every read is bounded; the test stops the process long before

    def send(ftype, payload=b""):
        sock.sendall(bytes([ftype]) + len(payload).to_bytes(3, "big") + payload)

    def recv_exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("relay closed the line")
            data += chunk
        return data

    def recv():
        header = recv_exact(4)
        return header[0], recv_exact(int.from_bytes(header[1:], "big"))

    def str8(b):
        return bytes([len(b)]) + b

    def str16(b):
        return struct.pack(">H", len(b)) + b

    # LOGIN: version 2, password, user, secret, instance, keep-alive 25 s, flags 0, and the
    # services it answers: "reject" and "terminate".
    send(0x01, bytes([2, 0]) + str8(user.encode()) + str16(password) + os.urandom(16) +
         struct.pack(">I", 25000) + bytes([0, 2]) + str8(b"reject") + str8(b"terminate"))
    ftype, _ = recv()
    if ftype != 0x81:
        raise RuntimeError(f"login refused (frame type 0x{ftype:02x})")
    write_port(ready_file, 0)
    last_ping = time.monotonic()
    while True:
        if time.monotonic() - last_ping > 5:  # keep-alive: the relay closes silent lines
            send(0x02, struct.pack(">Q", 1))
            last_ping = time.monotonic()
        readable, _, _ = select.select([sock], [], [], 5)
        if not readable:
            continue
        ftype, payload = recv()
        if ftype != 0x84:  # INCOMING; PONG, RELEASED and the like need nothing
            continue
        session = payload[:4]
        caller_len = payload[4]
        service = payload[6 + caller_len:].decode()
        if service == "terminate":
            send(0x05, session)  # ACCEPT
            send(0x12, struct.pack(">H", 17) + str16(HOSTILE_TEXT))  # TERMINATE
            send(0x08)  # RELEASE
        else:
            send(0x06, session + struct.pack(">H", 14) + str16(HOSTILE_TEXT))  # REJECT


def raise_fd_limit():
    # A thousand sessions need more descriptors than the usual soft limit of 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def tls_alert_server(port_file):
    """Answers whatever a client sends first with a TLS alert record (protocol_version), as a
    TLS server does to bytes that are not a ClientHello, and closes."""
    async def handle(reader, writer):
        try:
            await reader.read(65536)
            writer.write(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    write_port(port_file, server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def main(argv):
    raise_fd_limit()
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "echo" and len(argv) == 3:
        asyncio.run(echo_server(argv[2]))
    elif cmd == "tlsalert" and len(argv) == 3:
        asyncio.run(tls_alert_server(argv[2]))
    elif cmd == "sinksource" and len(argv) == 5:
        sinksource(argv[2], argv[3], argv[4])
    elif cmd == "clients" and len(argv) in (6, 7):
        hold = len(argv) == 7 and argv[6] == "hold"
        return asyncio.run(clients(int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]), hold))
    elif cmd == "slowcat" and len(argv) == 4:
        slowcat(int(argv[2]), float(argv[3]))
    elif cmd == "hostilepeer" and len(argv) == 6:
        hostile_peer(argv[2], argv[3], argv[4], argv[5])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
