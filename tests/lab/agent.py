#!/usr/bin/env python3
"""Probe and listener agent, run inside one lab namespace (``ip netns exec``). Stdlib only.

    agent.py listen '{"tcp": [22, 11434], "udp_echo": [500], "dns": true}'
        TCP: accept, send ``"<port> open\\n"``, close. UDP echo: send the datagram back.
        DNS (UDP+TCP 53): answer any A query with 198.51.100.80. Prints ``ready`` when bound.
    agent.py probe '[{"id": "a", "kind": "tcp", "dst": "192.168.100.10", "port": 11434}, ...]'
        Runs every probe at once (threads) and prints ``{"<id>": {"ok": bool, "detail": str}}``.
        Kinds: ``tcp`` (connect and read a line), ``udp_echo``, ``dns_udp``, ``dns_tcp``,
        ``dhcp`` (a unicast DHCPDISCOVER from port 68; ok if an OFFER comes back), ``ping``
        (one ICMP echo with the system ``ping``). ``timeout`` per probe (default 1.5 s).
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

WEB = "198.51.100.80"


# -- listeners -----------------------------------------------------------------------------


def _tcp_server(port: int, handler) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)

    def loop() -> None:
        while True:
            conn, _ = s.accept()
            threading.Thread(target=handler, args=(conn, port), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def _banner(conn: socket.socket, port: int) -> None:
    with conn:
        try:
            conn.sendall(f"{port} open\n".encode())
        except OSError:
            pass


def _dns_reply(query: bytes) -> bytes | None:
    if len(query) < 12:
        return None
    qid, flags = struct.unpack("!HH", query[:4])
    i = 12
    while i < len(query) and query[i]:
        i += query[i] + 1
    i += 5
    if i > len(query):
        return None
    header = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100), 1, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(WEB)
    return header + query[12:i] + answer


def _dns_tcp(conn: socket.socket, _port: int) -> None:
    with conn:
        try:
            conn.settimeout(3)
            (length,) = struct.unpack("!H", _recv_exact(conn, 2))
            reply = _dns_reply(_recv_exact(conn, length))
            if reply:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, struct.error):
            pass


def _udp_server(port: int, reply) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))

    def loop() -> None:
        while True:
            data, addr = s.recvfrom(4096)
            out = reply(data)
            if out:
                s.sendto(out, addr)

    threading.Thread(target=loop, daemon=True).start()


def listen(spec: dict) -> None:
    for port in spec.get("tcp", []):
        _tcp_server(port, _banner)
    for port in spec.get("udp_echo", []):
        _udp_server(port, lambda data: data)
    if spec.get("dns"):
        _udp_server(53, _dns_reply)
        _tcp_server(53, _dns_tcp)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


# -- probes --------------------------------------------------------------------------------


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _dns_query(name: str = "openwrt.lan") -> tuple[int, bytes]:
    qid = random.randrange(1, 65535)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return qid, q + b"\x00" + struct.pack("!HH", 1, 1)


def probe_one(p: dict) -> tuple[bool, str]:
    kind, dst, port = p["kind"], p["dst"], p.get("port")
    timeout = float(p.get("timeout", 1.5))
    try:
        if kind == "tcp":
            with socket.create_connection((dst, port), timeout=timeout) as c:
                c.settimeout(timeout)
                try:
                    line = c.recv(64).decode(errors="replace").strip()
                except OSError:
                    line = ""
                return True, f"connected{': ' + line if line else ''}"
        if kind in ("udp_echo", "dns_udp"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.connect((dst, port or 53))
                qid, payload = _dns_query() if kind == "dns_udp" else (0, os.urandom(16))
                s.send(payload)
                data = s.recv(4096)
                if kind == "udp_echo":
                    return data == payload, "echoed" if data == payload else "wrong reply"
                ok = len(data) >= 2 and struct.unpack("!H", data[:2])[0] == qid
                return ok, f"DNS reply rcode {data[3] & 15}" if ok else "wrong reply"
        if kind == "dns_tcp":
            with socket.create_connection((dst, port or 53), timeout=timeout) as c:
                c.settimeout(timeout)
                qid, payload = _dns_query()
                c.sendall(struct.pack("!H", len(payload)) + payload)
                (length,) = struct.unpack("!H", _recv_exact(c, 2))
                data = _recv_exact(c, length)
                ok = struct.unpack("!H", data[:2])[0] == qid
                return ok, f"DNS reply rcode {data[3] & 15}" if ok else "wrong reply"
        if kind == "dhcp":
            return _dhcp(dst, p.get("mac", "52:54:00:a1:00:10"), timeout)
        if kind == "ping":
            r = subprocess.run(["ping", "-n", "-c", "1", "-W", str(max(1, round(timeout))), dst],
                               capture_output=True, text=True)
            last = (r.stdout.strip().splitlines() or [""])[-1]
            return r.returncode == 0, last or r.stderr.strip()
        return False, f"unknown probe kind {kind}"
    except (OSError, struct.error) as exc:
        return False, f"{type(exc).__name__}: {exc}"


def _dhcp(dst: str, mac: str, timeout: float) -> tuple[bool, str]:
    xid = random.randrange(1, 2**32)
    hw = bytes(int(x, 16) for x in mac.split(":"))
    pkt = struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0) + b"\0" * 16 + hw + b"\0" * 10
    pkt += b"\0" * 192 + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 255])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 68))
        s.settimeout(timeout)
        s.connect((dst, 67))
        s.send(pkt)
        data = s.recv(4096)
    if len(data) < 240 or struct.unpack("!I", data[4:8])[0] != xid:
        return False, "wrong reply"
    return True, f"offer {socket.inet_ntoa(data[16:20])}"


def probe(specs: list[dict]) -> dict:
    results: dict[str, dict] = {}
    dhcp_lock = threading.Lock()  # one socket on port 68 at a time

    def run(p: dict) -> None:
        if p["kind"] == "dhcp":
            with dhcp_lock:
                ok, detail = probe_one(p)
        else:
            ok, detail = probe_one(p)
        results[p["id"]] = {"ok": ok, "detail": detail}

    threads = [threading.Thread(target=run, args=(p,)) for p in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


if __name__ == "__main__":
    mode, arg = sys.argv[1], json.loads(sys.argv[2])
    if mode == "listen":
        listen(arg)
    elif mode == "probe":
        print(json.dumps(probe(arg)))
    else:
        sys.exit(f"usage: {sys.argv[0]} listen|probe JSON")
