"""TEST STAND-IN daemons for the lab router's services: dnsmasq (DNS on UDP+TCP 53, DHCPv4 on
UDP 67) and uhttpd (TCP 80). NOT those programs: just enough of each for packet probes to tell
"the firewall let it through" from "it did not". (The router's SSH on TCP 22 is the real one:
``tests/lab/router.py`` serves the harness's sshd there; see ``init.d/dropbear``.)

* ``dnsmasq``: answers DNS queries (A records for the router's hostname and for ``dhcp.host``
  sections, ``<name>`` and ``<name>.lan``; NXDOMAIN otherwise; no upstream) and DHCP
  DISCOVER/REQUEST (OFFER/ACK from the ``dhcp`` section of the interface the request came in on:
  a static ``host`` lease by MAC, else the first address of ``start``/``limit``; ``ignore '1'``
  sections answer nothing). Replies go to the sender's address when it has one (a unicast
  probe), else broadcast on the receiving device. ``reload`` restarts it with the new config.
* ``uhttpd``: answers ``HTTP/1.0 200 OK`` (LuCI's web server).

They listen on 0.0.0.0 (every router address, the WAN and wg0 included), so whether a probe
gets an answer depends on the firewall only -- stricter than the real defaults.

Usage: ``services.py <dnsmasq|uhttpd> <start|stop|restart|reload|running>``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from labcommon import STATE_DIR, as_list, load_state, log, main_guard, uci_export  # noqa: E402

IP_PKTINFO = 8  # Linux; not exported by every Python's socket module
PORTS = {"dnsmasq": (("udp", 53), ("tcp", 53), ("udp", 67)), "uhttpd": (("tcp", 80),)}


# -- DNS -----------------------------------------------------------------------------------


def dns_records() -> dict[str, str]:
    records: dict[str, str] = {}
    lan_ip = None
    for s in uci_export("network"):
        if s["type"] == "interface" and s["name"] == "lan":
            lan_ip = (as_list(s["options"].get("ipaddr")) or [None])[0]
    hostname = "OpenWrt"
    for s in uci_export("system"):
        if s["type"] == "system" and isinstance(s["options"].get("hostname"), str):
            hostname = s["options"]["hostname"]
    if lan_ip:
        lan_ip = lan_ip.split("/")[0]
        records[hostname.lower()] = records[f"{hostname.lower()}.lan"] = lan_ip
    for s in uci_export("dhcp"):
        o = s["options"]
        if s["type"] in ("host", "domain") and isinstance(o.get("name"), str) and o.get("ip"):
            name = o["name"].lower()
            records[name] = records[f"{name}.lan"] = as_list(o["ip"])[0]
    return records


def dns_answer(query: bytes, records: dict[str, str]) -> bytes | None:
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, i = [], 12
    while i < len(query) and query[i]:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    i += 1
    if i + 4 > len(query):
        return None
    qtype, _qclass = struct.unpack("!HH", query[i:i + 4])
    question = query[12:i + 4]
    name = ".".join(labels).lower()
    rd = flags & 0x0100
    answer = b""
    rcode = 0
    if name in records:
        if qtype in (1, 255):
            answer = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 4)
                      + socket.inet_aton(records[name]))
    else:
        rcode = 3
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                         1 if answer else 0, 0, 0)
    return header + question + answer


class DnsUdp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = dns_answer(data, self.server.records)
        if reply:
            sock.sendto(reply, self.client_address)


class DnsTcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (length,) = struct.unpack("!H", head)
            data = b""
            while len(data) < length:
                chunk = self.request.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
            reply = dns_answer(data, self.server.records)
            if reply:
                self.request.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass


# -- DHCP ----------------------------------------------------------------------------------


def dhcp_pools() -> dict[str, dict]:
    """device -> {"router", "net", "start", "limit", "leasetime", "hosts": {mac: ip}}."""
    net_cfg = {s["name"]: s["options"] for s in uci_export("network")
               if s["type"] == "interface" and s["name"]}
    live = {n: r.get("device") for n, r in load_state("netifd").get("interfaces", {}).items()
            if r.get("up")}
    dhcp = uci_export("dhcp")
    hosts = {}
    for s in dhcp:
        o = s["options"]
        if s["type"] == "host" and o.get("mac") and o.get("ip"):
            for mac in as_list(o["mac"]):
                hosts[mac.lower()] = as_list(o["ip"])[0]
    pools = {}
    for s in dhcp:
        o = s["options"]
        if s["type"] != "dhcp" or o.get("ignore") == "1":
            continue
        iface = o.get("interface")
        n = net_cfg.get(iface) or {}
        addr = (as_list(n.get("ipaddr")) or [None])[0]
        dev = live.get(iface)
        if not addr or not dev:
            continue
        mask = n.get("netmask") if isinstance(n.get("netmask"), str) else None
        network = ipaddress.ip_interface(addr if "/" in addr or not mask else f"{addr}/{mask}")
        pools[dev] = {"router": str(network.ip), "net": network.network,
                      "start": int(o.get("start", "100")), "limit": int(o.get("limit", "150")),
                      "leasetime": o.get("leasetime", "12h"), "hosts": hosts}
    return pools


def _seconds(leasetime: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if leasetime == "infinite":
        return 0xFFFFFFFF
    if leasetime[-1:] in units:
        return int(leasetime[:-1]) * units[leasetime[-1]]
    return int(leasetime)


def dhcp_reply(packet: bytes, pool: dict) -> bytes | None:
    if len(packet) < 240 or packet[0] != 1 or packet[236:240] != b"\x63\x82\x53\x63":
        return None
    msg_type = None
    i = 240
    while i < len(packet) and packet[i] != 255:
        if packet[i] == 0:
            i += 1
            continue
        code, length = packet[i], packet[i + 1]
        if code == 53:
            msg_type = packet[i + 2]
        i += 2 + length
    if msg_type not in (1, 3):  # DISCOVER, REQUEST
        return None
    hlen = min(packet[2], 16)
    mac = ":".join(f"{b:02x}" for b in packet[28:28 + hlen])
    net = pool["net"]
    offered = pool["hosts"].get(mac) or str(net.network_address + pool["start"])
    router = pool["router"]
    reply = bytearray(packet[:240])
    reply[0] = 2
    reply[16:20] = socket.inet_aton(offered)
    reply[20:24] = socket.inet_aton(router)
    opts = bytes([53, 1, 2 if msg_type == 1 else 5]) + bytes([54, 4]) + socket.inet_aton(router)
    opts += bytes([51, 4]) + struct.pack("!I", _seconds(pool["leasetime"]))
    opts += bytes([1, 4]) + socket.inet_aton(str(net.netmask))
    opts += bytes([3, 4]) + socket.inet_aton(router) + bytes([6, 4]) + socket.inet_aton(router)
    return bytes(reply) + opts + b"\xff"


def dhcp_loop(sock: socket.socket, pools: dict) -> None:
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except OSError:
            continue
        ifindex = None
        for level, kind, cdata in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(cdata) >= 4:
                ifindex = struct.unpack("I", cdata[:4])[0]
        try:
            dev = socket.if_indextoname(ifindex) if ifindex else None
        except OSError:
            dev = None
        pool = pools.get(dev)
        if pool is None:
            continue
        reply = dhcp_reply(data, pool)
        if reply is None:
            continue
        giaddr = socket.inet_ntoa(data[24:28])
        ciaddr = socket.inet_ntoa(data[12:16])
        if giaddr != "0.0.0.0":
            dest = (giaddr, 67)
        elif ciaddr != "0.0.0.0":
            dest = (ciaddr, 68)
        elif addr[0] != "0.0.0.0":
            dest = addr  # a unicast probe
        else:
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            out.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
            out.sendto(reply, ("255.255.255.255", 68))
            out.close()
            continue
        sock.sendto(reply, dest)


# -- uhttpd --------------------------------------------------------------------------------


class Http(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(2)
        try:
            self.request.recv(4096)
            self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nLuCI\n")
        except OSError:
            pass


class TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class UDP(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(name: str) -> None:
    servers = []
    if name == "dnsmasq":
        records = dns_records()
        for cls, handler in ((UDP, DnsUdp), (TCP, DnsTcp)):
            srv = cls(("0.0.0.0", 53), handler)
            srv.records = records
            servers.append(srv)
        dsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        dsock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        dsock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        dsock.bind(("0.0.0.0", 67))
        threading.Thread(target=dhcp_loop, args=(dsock, dhcp_pools()), daemon=True).start()
    elif name == "uhttpd":
        servers.append(TCP(("0.0.0.0", 80), Http))
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()


# -- daemon control ------------------------------------------------------------------------


def _pidfile(name: str) -> str:
    return f"{STATE_DIR}/{name}.pid"


def _pid(name: str) -> int | None:
    try:
        with open(_pidfile(name)) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(name: str) -> None:
    if _pid(name):
        return
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    ready_r, ready_w = os.pipe()
    if os.fork() == 0:  # first child
        os.close(ready_r)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, ready_w)
            os.closerange(ready_w + 1, 1024)
            serve(name)
            with open(_pidfile(name) + ".tmp", "w") as f:
                f.write(f"{os.getpid()}\n")
            os.replace(_pidfile(name) + ".tmp", _pidfile(name))  # never seen empty
            os.write(ready_w, b"ok")
        except Exception as exc:  # noqa: BLE001 - report anything to the parent
            os.write(ready_w, f"error: {exc}".encode())
            os._exit(1)
        os.close(ready_w)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            time.sleep(3600)
    os.close(ready_w)
    os.wait()
    with os.fdopen(ready_r, "rb") as f:
        status = f.read().decode()
    if status != "ok":
        raise RuntimeError(f"{name} did not start: {status or 'no answer'}")
    log(f"{name} started")


def stop(name: str) -> None:
    pid = _pid(name)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.01)
    try:
        os.unlink(_pidfile(name))
    except OSError:
        pass
    log(f"{name} stopped")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in PORTS:
        print(f"usage: services.py <{'|'.join(PORTS)}> start|stop|restart|reload|running",
              file=sys.stderr)
        return 1
    name, action = argv
    if action in ("start", "boot"):
        start(name)
    elif action == "stop":
        stop(name)
    elif action in ("restart", "reload"):
        stop(name)
        start(name)
    elif action == "running":
        return 0 if _pid(name) else 1
    return 0


if __name__ == "__main__":
    main_guard(main)
