#!/usr/bin/env python3
"""TLS scenarios for scripts/tests.d/40-tls.sh, against a running tern-relay on loopback.

  tls_load.py slowloris HOST PORT COUNT TIMEOUT_S
      COUNT connections each send the first half of a real ClientHello and stall. Passes if the
      relay closes every one of them within TIMEOUT_S (the handshake timeout) plus the 0.1-s check
      granularity and 0.9 s of slack for a loaded machine, and none before 0.8 x TIMEOUT_S.

  tls_load.py reload HOST PORT CERT KEY NEWCERT NEWKEY
      Client 1 connects and keeps its session; CERT/KEY are replaced by NEWCERT/NEWKEY (renamed
      over, as deploy tools do); a new client must see the new certificate (SHA-256 compared)
      while client 1 still gets STUN Binding answers; then CERT is replaced by garbage and new
      clients must still see the new certificate.

Every loop is bounded in count and time. Exit status 0 on success; the reason on failure.
"""
import hashlib
import os
import select
import shutil
import socket
import ssl
import struct
import sys
import time


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def half_client_hello():
    """The first half of the ClientHello Python's ssl module would send."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello and hello[0] == 0x16, "no ClientHello produced"
    return hello[: len(hello) // 2]


def slowloris(host, port, count, timeout):
    hello = half_client_hello()
    socks = []
    t0 = time.monotonic()
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(hello)
        s.setblocking(False)
        socks.append(s)
    opened = time.monotonic() - t0
    print(f"slowloris: {count} connections sent half a ClientHello in {opened:.2f} s", flush=True)
    open_socks = set(socks)
    closed_at = []
    limit = timeout + 0.1 + 0.9 + opened
    while open_socks and time.monotonic() - t0 < limit:
        r, _, _ = select.select(list(open_socks)[:1000], [], [], 0.2)
        for s in r:
            try:
                data = s.recv(4096)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:
                closed_at.append(time.monotonic() - t0)
                open_socks.discard(s)
                s.close()
    for s in open_socks:
        s.close()
    if open_socks:
        sys.exit(f"slowloris: {len(open_socks)} of {count} connections still open after {limit:.1f} s")
    first, last = min(closed_at), max(closed_at)
    print(f"slowloris: all {count} closed, first after {first:.2f} s, last after {last:.2f} s "
          f"(handshake timeout {timeout} s, checked every 0.1 s)")
    if first < 0.8 * timeout:
        sys.exit(f"slowloris: a connection was closed after {first:.2f} s, before the timeout")


def fingerprint(host, port):
    with socket.create_connection((host, port), timeout=5) as raw:
        with client_context().wrap_socket(raw, server_hostname="localhost") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def pem_fingerprint(path):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(path).read())).hexdigest()


def binding(s):
    tid = os.urandom(12)
    s.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
    resp = b""
    while len(resp) < 20:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed")
        resp += chunk
    mtype, _, cookie = struct.unpack("!HHI", resp[:8])
    if mtype != 0x0101 or resp[8:20] != tid:
        raise RuntimeError(f"unexpected answer type {mtype:#06x}")


def replace(src, dst):
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.rename(tmp, dst)


def wait_fingerprint(host, port, want, what, limit=8.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        got = fingerprint(host, port)
        if got == want:
            return time.monotonic() - t0
        time.sleep(0.2)
    sys.exit(f"reload: {what}: still serving {got}, wanted {want}")


def reload(host, port, cert, key, newcert, newkey):
    old, new = pem_fingerprint(cert), pem_fingerprint(newcert)
    assert old != new
    raw = socket.create_connection((host, port), timeout=5)
    first = client_context().wrap_socket(raw, server_hostname="localhost")
    if hashlib.sha256(first.getpeercert(binary_form=True)).hexdigest() != old:
        sys.exit("reload: the first client does not see the configured certificate")
    binding(first)
    replace(newkey, key)
    replace(newcert, cert)
    took = wait_fingerprint(host, port, new, "after replacing cert and pkey")
    print(f"reload: new clients see the new certificate {new[:16]}... after {took:.1f} s")
    binding(first)
    print("reload: the client connected before the reload still gets answers on its session")
    with open(cert + ".new", "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    os.rename(cert + ".new", cert)
    time.sleep(2.5)  # the watcher checks once a second and waits for the file to be still
    if fingerprint(host, port) != new:
        sys.exit("reload: a broken certificate replaced the working one")
    print("reload: a broken replacement keeps the previous certificate serving")
    first.close()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "slowloris":
        slowloris(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "reload":
        reload(sys.argv[2], int(sys.argv[3]), *sys.argv[4:8])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
