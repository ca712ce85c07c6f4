#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets that take structured bytes
(server_input, stream_framer, turn_rest_username) into fuzz/corpus/<target>/seed-*.

The server_input encoding is documented in relay/proto/src/fuzzing/server.rs: a flags byte, a
quotas byte, then steps; a step's first byte is (client << 4) | kind."""
import os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")

def write(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))

AUTHED = 0x01
NONCE, STRUCT, CDATA, PEER, ADV, CLOSE, ADMIN = 0x0F, 0x06, 0x09, 0x0A, 0x0C, 0x0D, 0x0E
ALLOC, REFRESH, PERM, BIND, SEND, BINDING, MULTI = range(7)

def c(client, kind):
    return [(client << 4) | kind]

def alloc(client, arg=0, auth=AUTHED):
    return c(client, STRUCT) + [ALLOC, arg] + ([0x02, 0x58] if arg & 0x10 else []) + ([0, 1] if arg & 0x40 else []) + [auth]

def perm(client, peer, auth=AUTHED):
    return c(client, STRUCT) + [PERM, peer, auth]

def bind(client, peer, chan=0x02, auth=AUTHED):
    return c(client, STRUCT) + [BIND, peer, chan, auth]

def send(client, peer, n=5):
    return c(client, STRUCT) + [SEND, peer, n, 0]

def refresh(client, arg):
    return c(client, STRUCT) + [REFRESH, arg, AUTHED]

def cdata(client, chan=0x02, n=10):
    return c(client, CDATA) + [chan, n]

def peer(sel, p, n=12):
    return c(0, PEER) + [sel, p, n]

def adv(b):
    return c(0, ADV) + [b]

# UDP client, permission + channel to a public peer, data both ways, then time passes.
flow = (c(0, NONCE) + alloc(0) + perm(0, 0) + bind(0, 0) + cdata(0) + peer(0, 0) + send(0, 0)
        + adv(0x81) + cdata(0) + adv(40) + peer(0, 0) + refresh(0, 0x03))
write("server_input", "udp-flow", [0x00, 0x00] + flow)
# The same over TCP (client 2) and TLS (client 3), with FINGERPRINT on.
write("server_input", "tcp-flow", [0x02, 0x00] + c(2, NONCE) + alloc(2) + perm(2, 0) + bind(2, 0) + cdata(2)
      + peer(0, 0) + c(2, CLOSE) + c(3, NONCE) + alloc(3) + bind(3, 0) + peer(0, 0) + cdata(3, 0x02, 7))
# IPv6 client, dual-stack allocation, IPv6 and IPv4 peers, SHA-256 integrity.
write("server_input", "dual-stack", [0x00, 0x00] + c(1, NONCE) + alloc(1, 0x02, 0x05) + perm(1, 1, 0x05)
      + perm(1, 0, 0x05) + bind(1, 1, 0x03, 0x05) + peer(0, 1) + peer(1, 0) + send(1, 1))
# Every refused peer, by permission, channel and Send; and a reload that allows 10/8.
denied = []
for p in range(2, 12):
    denied += perm(0, p) + bind(0, p, 0x05) + send(0, p)
write("server_input", "ssrf", [0x00, 0x00] + c(0, NONCE) + alloc(0) + denied + c(0, ADMIN) + [0x07]
      + perm(0, 2) + peer(0, 2) + c(0, ADMIN) + [0x03] + peer(0, 2))
# Quotas: alice twice (clients 0 and 3) with user-quota 1, total-quota 2.
write("server_input", "quota", [0x00, 0x01 | (2 << 2)] + c(0, NONCE) + alloc(0) + c(3, NONCE) + alloc(3)
      + c(1, NONCE) + alloc(1) + c(2, NONCE) + alloc(2) + refresh(0, 0x01) + alloc(3))
# Ports: EVEN-PORT with R, a reservation token, dual allocations until 508, then recovery.
write("server_input", "ports", [0x00, 0x00] + c(0, NONCE) + alloc(0, 0x0C) + c(1, NONCE) + alloc(1, 0x42)
      + c(2, NONCE) + alloc(2, 0x02) + c(3, NONCE) + alloc(3, 0x02) + c(0, ADMIN) + [0x02] + alloc(1)
      + adv(40) + alloc(1) + c(0, ADMIN) + [0x00] + alloc(1, 0x01))
# max-bps and bps-capacity with the 401 budget on.
write("server_input", "bandwidth", [0x20 | 0x40 | 0x80, 0x00] + c(0, NONCE) + alloc(0) + bind(0, 0)
      + cdata(0, 0x02, 250) * 20 + adv(0x90) + cdata(0, 0x02, 250) + c(1, NONCE) * 5)
# no-auth and rfc5766 channel numbers.
write("server_input", "no-auth", [0x01 | 0x04, 0x00] + alloc(0, 0, 0) + perm(0, 0, 0) + bind(0, 0, 0x22, 0)
      + cdata(0, 0x22) + peer(0, 0))
# Raw packets: a Binding request and the RFC 5769 request vector.
binding = bytes.fromhex("000100002112a442") + b"\x01" * 12
write("server_input", "raw-binding", [0x00, 0x00] + c(0, 0) + list(struct.pack(">H", len(binding))) + list(binding)
      + c(0, 3) + [0x00] + list(struct.pack(">H", len(binding))) + list(binding))

# Streams: ChannelData with padding, STUN, cut anywhere.
cd = bytes([0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0])
stun = bytes.fromhex("000100082112a442") + b"\x02" * 12 + bytes.fromhex("80280004deadbeef")
write("stream_framer", "mixed", cd + stun + cd + stun[:7])
write("stream_framer", "http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
write("stream_framer", "max-channel-data", bytes([0x4F, 0xFF, 0xFF, 0xFF]) + b"\x00" * 16)

for name, s in [("expiry-user", b":1800000000:alice"), ("user-expiry", b":alice:1800000000"),
                ("bare", b":1800000000"), ("dash", bytes([ord("-") << 1 | 1]) + b"1800000000-bob"),
                ("huge", b":99999999999999999999:x"), ("colons", b":1:a:b:c")]:
    write("turn_rest_username", name, s)
