"""``inventories/home.py`` is the real use: run unedited, it names every blank to fill in, exits 2
and contacts nothing; filled in, the same file passes the plan's checks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs pyinfra's CLI in this process with every IPv4/IPv6 connect() recorded and refused.
NO_TCP = textwrap.dedent("""
    import runpy, socket, sys
    log = sys.argv.pop(1)
    def deny(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            with open(log, "a") as f:
                f.write(repr(address) + "\\n")
            raise OSError("test: no TCP connection allowed")
        return real(self, address, *args)
    real = socket.socket.connect
    socket.socket.connect = deny
    socket.socket.connect_ex = deny
    sys.argv[0] = "pyinfra"
    runpy.run_module("pyinfra", run_name="__main__")
""")


def run_pyinfra(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "connects.log"
    log.write_text("")
    proc = subprocess.run([sys.executable, "-c", NO_TCP, str(log), *args], cwd=REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    return proc, log.read_text()


def blanks_in(path: Path) -> int:
    return len(re.findall(r"\bFILL_IN\(\"", path.read_text()))


def test_unedited_home_names_every_blank_and_contacts_nothing(tmp_path):
    proc, connects = run_pyinfra(tmp_path, "inventories/home.py", "deploys/all.py")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert connects == ""
    out = proc.stderr
    assert "Traceback" not in out + proc.stdout
    assert "inventories/home.py is the example network; fill in what only you know:" in out
    lines = [line for line in out.splitlines() if line.startswith("  - ")]
    expected = blanks_in(REPO / "inventories/home.py") + blanks_in(
        REPO / "inventories/group_data/all.py")
    assert expected >= 8 and len(lines) == expected
    for line in ("  - router: ssh_hostname: the router's address on your LAN",
                 "  - ai-server: ssh_user: ", "  - alice-mac: ssh_hostname: ",
                 "  - bob-mac: ssh_user: ", "  - group_data/all.py: vpn_endpoint: "):
        assert any(got.startswith(line) for got in lines), (line, out)
    assert out.rstrip().endswith("--> Nothing was changed: no host was contacted.")


def test_home_filled_in_passes_the_plan_checks(tmp_path):
    """The same file with its blanks filled passes every check before connecting (pyinfra's
    debug-inventory stops right after them) and still contacts nothing."""
    inv = tmp_path / "inventories"
    shutil.copytree(REPO / "inventories", inv, ignore=shutil.ignore_patterns("__pycache__"))
    values = iter(["192.168.1.1", "192.168.100.10", "admin", "52:54:00:a1:00:10",
                   "alice-mac.lan", "alice", "bob-mac.lan", "bob"])
    home = inv / "home.py"
    # A FILL_IN(...) call spans up to two lines of implicitly concatenated strings.
    text = re.sub(r'FILL_IN\((?:"[^"]*"\s*)+\)', lambda _: repr(next(values)), home.read_text())
    home.write_text(text)
    (inv / "group_data" / "all.py").write_text(re.sub(
        r'FILL_IN\((?:"[^"]*"\s*)+\)', repr("vpn.example.org"),
        (inv / "group_data" / "all.py").read_text()) + f"\nsecrets_dir = {str(tmp_path)!r}\n")
    assert next(values, None) is None and "FILL_IN(" not in text.split("import", 2)[-1]
    proc, connects = run_pyinfra(tmp_path, str(home), "debug-inventory")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert connects == ""
    assert "alice-mac" in proc.stdout + proc.stderr
