"""Benchmark: remote execs, uploads, SSH connections per host and wall time of deploys against
the whole lab (a script, not a test; prints a table).

The server and clients are the lab's fake Macs (``tests/lab/macs.py``), converged by their
roles.

Counts are taken by each host's SSH server (every exec is logged by its ForceCommand; uploads
are ``scp -t`` on the router, SFTP sessions elsewhere; connections are accepted logins). Runs:

* the whole lab (``pyinfra inventories/lab.py deploys/all.py``): converge from factory state
  (``-y``), then no-op re-runs with pyinfra's default change detection and with ``-y``;
* ``--limit router`` on a fresh lab: converge (``-y``) and a no-op re-run;
* pyinfra's floor: ``pyinfra inventories/lab.py exec -- true`` (one exec on every host).

Run as root from the repo root (it builds its own lab, prefix ``ssolb<pid>-``, in a temp dir)::

    python3 tests/benchmarks/lab.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.lab.lab import ALL_MANAGED, Lab, LabState, requirements_missing_lab  # noqa: E402

PREFIX = f"ssolb{os.getpid()}-"  # never collides with another run


def pyinfra(lab_dir: Path, *args: str) -> float:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pyinfra", "inventories/lab.py", *args],
                            cwd=REPO, input="\n", capture_output=True, text=True, timeout=900,
                            env={**os.environ, "SSOL_LAB_DIR": str(lab_dir),
                                 "PYTHONDONTWRITEBYTECODE": "1"})
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    return time.monotonic() - start


def measure(state: LabState, label: str, *args: str) -> list[tuple]:
    mark = state.mark()
    seconds = pyinfra(state.dir, *args)
    counts = state.counts(mark)
    return [(label, host, counts[host]["execs"] - counts[host]["uploads"],
             counts[host]["uploads"], counts[host]["connections"], seconds)
            for host in ALL_MANAGED]


def main() -> None:
    missing = requirements_missing_lab()
    if missing:
        raise SystemExit(f"cannot run: {missing}")
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "whole"
        start = time.monotonic()
        with Lab(whole, PREFIX):
            built = time.monotonic() - start
            state = LabState(whole)
            rows += measure(state, "lab: converge -y", "deploys/all.py", "-y")
            rows += measure(state, "lab: no-op", "deploys/all.py")
            rows += measure(state, "lab: no-op -y", "deploys/all.py", "-y")
            rows += measure(state, "floor: exec true", "exec", "--", "true")
        limited = Path(tmp) / "limit"
        with Lab(limited, PREFIX):
            state = LabState(limited)
            rows += measure(state, "router: converge -y", "deploys/all.py", "--limit",
                            "router", "-y")
            rows += measure(state, "router: no-op", "deploys/all.py", "--limit", "router")
    print(f"lab up (namespaces, router boot, 3 fake Macs, 4 SSH servers): {built:.2f} s\n")
    print(f"{'run':<20} {'host':<8} {'execs':>5} {'uploads':>7} {'conns':>5} {'wall s':>7}")
    last = None
    for label, host, execs, uploads, conns, seconds in rows:
        wall = f"{seconds:>7.2f}" if label != last else ""
        print(f"{label if label != last else '':<20} {host:<8} {execs:>5} {uploads:>7} "
              f"{conns:>5} {wall:>7}")
        last = label
    print("\nexecs exclude uploads; wall time is the whole pyinfra run (all hosts).")


if __name__ == "__main__":
    main()
