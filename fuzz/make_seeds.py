#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/seed-* (deterministic).

Run from anywhere: python3 fuzz/make_seeds.py. Files named regress-* (inputs that found bugs) are
kept; seed-* files are rewritten. Only the standard library is used.
"""
import os
import random
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def clear_seeds():
    if not os.path.isdir(CORPUS):
        return
    for target in os.listdir(CORPUS):
        for name in os.listdir(os.path.join(CORPUS, target)):
            if name.startswith("seed-"):
                os.remove(os.path.join(CORPUS, target, name))


# ---- fuzz_codec: one frame of every type (docs/protocol.md §3), and a stream of all ----------

def frame(t, payload=b""):
    return bytes([t]) + struct.pack(">I", len(payload))[1:] + payload


def s8(s):
    return bytes([len(s)]) + s.encode()


def s16(s):
    b = s if isinstance(s, bytes) else s.encode()
    return struct.pack(">H", len(b)) + b


def services(*names):
    return bytes([len(names)]) + b"".join(s8(n) for n in names)


def login(auth, user, secret, instance, keepalive_ms, flags, *names, version=2):
    return frame(0x01, bytes([version, auth]) + s8(user) + s16(secret) + instance
                 + struct.pack(">I", keepalive_ms) + bytes([flags]) + services(*names))


def codec():
    frames = {
        "login-password": login(0, "bob", "secret", bytes(16), 25000, 0, "ssh", "fax"),
        "login-token": login(1, "alice@example.org", bytes(range(40)), bytes(range(16)), 1000, 1),
        "login-calls-only": login(1, "bob", bytes(range(40)), bytes(16), 1000, 1, "ssh"),
        "login-32-services": login(0, "carol", "pw", bytes(16), 25000, 0,
                                   *["s%d" % i for i in range(32)]),
        # Version 1's layout (no service list): decodes to its version alone.
        "login-version-1": frame(0x01, bytes([1, 0]) + s8("bob") + s16("secret") + bytes(16)
                                 + struct.pack(">I", 25000) + b"\x01"),
        "ping": frame(0x02, struct.pack(">Q", 0x0102030405060708)),
        "peers-request": frame(0x03),
        "demand": frame(0x04, s8("alice") + s8("ssh")),
        "accept": frame(0x05, struct.pack(">I", 7)),
        "reject": frame(0x06, struct.pack(">IH", 7, 14) + s16("not now")),
        "logout": frame(0x07),
        "release": frame(0x08),
        "announce": frame(0x09, services("ssh", "web-8080")),
        "announce-none": frame(0x09, services()),
        "data": frame(0x10, b"hello"),
        "eof": frame(0x11),
        "terminate": frame(0x12, struct.pack(">H", 21) + s16("peer lost")),
        "login-ok": frame(0x81, struct.pack(">IIH", 3, 25000, 8) + bytes(range(40))),
        "pong": frame(0x82, struct.pack(">Q", 42)),
        "peers": frame(0x83, b"\x01" + struct.pack(">H", 3) + s8("alice") + services("ssh")
                       + s8("bob") + services("fax", "ssh") + s8("c.d") + services()),
        "incoming": frame(0x84, struct.pack(">I", 9) + s8("bob") + s8("web")),
        "connected": frame(0x85, struct.pack(">I", 9) + s8("alice")),
        "fail": frame(0x86, struct.pack(">H", 10) + s16("target offline")),
        "logged-out": frame(0x87, struct.pack(">H", 23) + s16("")),
        "released": frame(0x88),
        "need-lines": frame(0x89, struct.pack(">H", 3)),
        "service-lost": frame(0x8A, b"\x02" + s8("fax") + s8("ssh") + s16("taken over by another instance")),
    }
    for name, f in frames.items():
        put("fuzz_codec", name, f)
    put("fuzz_codec", "stream", b"".join(frames.values()))


# ---- fuzz_tpkt: the FuzzedDataProvider takes the limit and feed sizes from the end -----------

def tpkt():
    def tp(ifp):
        return bytes([3, 0]) + struct.pack(">H", len(ifp) + 4) + ifp
    tail = struct.pack("<Q", 0) + struct.pack("<Q", 0x0102030405060708)  # limit and feed sizes
    put("fuzz_tpkt", "frames", tp(b"\x06\x00") + tp(bytes(range(40))) + tp(b"\xc0" * 300) + tail)
    put("fuzz_tpkt", "cut", tp(b"\x01\x02\x03") + tp(b"abc")[:5] + tail)
    put("fuzz_tpkt", "bad-version", tp(b"\x01") + b"\x02\x00\x00\x08abcd" + tail)


# ---- fuzz_tls_records: mode byte, then provider bytes ----------------------------------------

def tls():
    rng = random.Random(8446)
    for mode in range(3):
        for i in range(6):
            n = rng.choice([16, 64, 200, 600])
            put("fuzz_tls_records", "mode%d-%d" % (mode, i),
                bytes([mode]) + bytes(rng.randrange(256) for _ in range(n)))
    # Raw mode: headers of every kind in front of a body.
    for i, h in enumerate([b"\x17\x03\x03\x00\x20", b"\x16\x03\x03\x00\x20", b"\x17\x03\x03\x40\x11",
                           b"\x17\x03\x03\x00\x10"]):
        put("fuzz_tls_records", "raw-header-%d" % i, b"\x00" + h + bytes(40))


# ---- configuration files ---------------------------------------------------------------------

def configs():
    root = os.path.dirname(HERE)
    with open(os.path.join(root, "config", "relay.toml")) as f:
        put("fuzz_relay_config", "sample", f.read())
    with open(os.path.join(root, "config", "agent.toml")) as f:
        put("fuzz_agent_config", "sample", f.read())
    relay = {
        "limits": "[limits]\nauth_threads = 2\nmax_pending_logins = 256\nforward_threads = \"auto\"\n",
        "rates": "[limits]\nlogin_failure_burst = 10.0\nlogin_failure_refill_s = 6\n",
        "timeouts": "[timeouts]\nkeepalive_min_ms = 1000\nkeepalive_max_ms = 25000\n"
                    "settings_poll_ms = 1000\n",
        "top": "listen = \"[::]:7443\"\nplaintext = true\ndata_dir = \"/tmp/x\"\n",
        "inline": "timeouts = { login_ms = 5, drain_ms = 0 }\n",
    }
    for name, text in relay.items():
        put("fuzz_relay_config", name, text)
    agent = {
        "minimal": "relay = \"127.0.0.1:7443\"\nuser = \"bob\"\nvacant_lines = 1\n",
        "services": "[services]\nssh = \"127.0.0.1:22\"\nweb = \"[::1]:8080\"\n",
        "forward": "[[forward]]\npeer = \"alice\"\nservice = \"web\"\nlisten = \"127.0.0.1:18080\"\n",
        "times": "keepalive_ms = 25000\nconnect_timeout_ms = 10000\n",
    }
    for name, text in agent.items():
        put("fuzz_agent_config", name, text)


# ---- fuzz_document: a tiny PNG, TIFF and PDF of each interesting kind ------------------------

def png(width, height, ppm=None, colour=False):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    channels = 3 if colour else 1
    rows = b"".join(b"\x00" + bytes(((x * 37 + y * 11) % 256) for x in range(width * channels))
                    for y in range(height))
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2 if colour else 0, 0, 0, 0))
    if ppm:
        out += chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
    out += chunk(b"IDAT", zlib.compress(rows))
    return out + chunk(b"IEND", b"")


def tiff(width, height, bits, pixels, xres=None, yres=None, compression=1):
    """Little-endian, one strip, min-is-white; `pixels` already compressed."""
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, compression),
        (262, 3, 1, 0), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height),
        (279, 4, 1, len(pixels)),
    ]
    if xres:
        entries += [(282, 5, 1, 0), (283, 5, 1, 0), (296, 3, 1, 2)]
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    data_at = 8 + ifd_size
    rationals_at = data_at + len(pixels)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_at
        if tag == 282:
            value = rationals_at
        if tag == 283:
            value = rationals_at + 8
        if kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    out += pixels
    if xres:
        out += struct.pack("<IIII", xres, 1, yres, 1)
    return bytes(out)


def pdf(width_pt, height_pt, rotate=0):
    content = b"0 0 0 rg 10 10 20 20 re f 0 0 1 RG 2 w 5 5 m 60 40 l S"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Rotate %d /Contents 4 0 R >>"
        % (width_pt, height_pt, rotate),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for o in offsets:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def documents():
    put("fuzz_document", "png-gray", png(16, 12))
    put("fuzz_document", "png-phys", png(20, 8, ppm=3937))  # 100 dpi
    put("fuzz_document", "png-colour", png(9, 9, colour=True))
    # 1728 x 8 bilevel at 204 x 196 dpi: the exact-pixel path.
    fax_rows = bytes(((y * 3 + x) % 7 == 0) * 0xFF for y in range(8) for x in range(216))
    put("fuzz_document", "tiff-fax", tiff(1728, 8, 1, fax_rows, 204, 196))
    put("fuzz_document", "tiff-gray", tiff(16, 16, 8, bytes((i * 13) % 256 for i in range(256)),
                                            150, 150))
    put("fuzz_document", "tiff-bilevel-nores", tiff(32, 4, 1, bytes([0xF0, 0x0F, 0xAA, 0x55] * 4)))
    # 1728 x 8000 white rows at 204 x 196 dpi (1037 mm), T.6: each row is one V0 code, a 1 bit.
    # The exact-pixel path once let this page through without the length limit.
    put("fuzz_document", "tiff-fax-too-long", tiff(1728, 8000, 1, b"\xff" * 1000, 204, 196, 4))
    put("fuzz_document", "pdf-square", pdf(72, 72))
    put("fuzz_document", "pdf-landscape", pdf(700, 90, rotate=90))


if __name__ == "__main__":
    clear_seeds()
    codec()
    tpkt()
    tls()
    configs()
    documents()
