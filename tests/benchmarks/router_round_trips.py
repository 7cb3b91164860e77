"""Benchmark: remote execs, uploads and wall time of the router deploy (a script, not a test).

Counts are taken by the fake router's SSH server (every exec is logged by its ForceCommand), for
(a) converge from factory 23.05 state and (b) a no-op re-run, with 1, 50 and 250 peers, with
pyinfra's default change detection and with ``-y``; plus pyinfra's floor (one ``exec true``).

Run as root from the repo root::

    python3 tests/benchmarks/router_round_trips.py [--peers 1,50,250]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.harness.openwrt_host import OpenWrtHost, requirements_missing  # noqa: E402
from tests.harness.router_runs import write_inventory  # noqa: E402

PACKAGES = ("base-files", "busybox", "dropbear", "firewall4", "libc", "uci")


def pyinfra(*args: str) -> float:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pyinfra", *args], cwd=REPO, input="\n",
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    if result.returncode != 0:
        raise SystemExit(result.stdout + result.stderr)
    return time.monotonic() - start


def measure(router: OpenWrtHost, *args: str) -> tuple[int, int, float]:
    router.reset_counts()
    seconds = pyinfra(*args)
    return router.exec_count() - router.upload_count(), router.upload_count(), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="1,50,250")
    args = parser.parse_args()
    missing = requirements_missing()
    if missing:
        raise SystemExit(f"cannot run: {missing}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for n in (int(x) for x in args.peers.split(",")):
            for mode in ("default", "-y"):
                work = tmp_path / f"{n}-{mode}"
                with OpenWrtHost(work, packages=PACKAGES) as router:
                    peers = [{"name": f"peer{i}"} for i in range(n - 1)]
                    inventory = write_inventory(work / "inventory.py", router,
                                                work / "secrets",
                                                clients=[("alice-mac", {})], peers=peers)
                    extra = ("-y",) if mode == "-y" else ()
                    cmd = (str(inventory), "deploys/all.py", "--limit", "router", *extra)
                    rows.append((n, mode, "converge", *measure(router, *cmd)))
                    rows.append((n, mode, "no-op", *measure(router, *cmd)))
                    if n == 1 and mode == "-y":
                        floor = measure(router, str(inventory), "--limit", "router", "-y",
                                        "exec", "--", "true")
                        rows.append((n, mode, "floor: exec true", *floor))
    print(f"{'peers':>5}  {'mode':<8} {'run':<17} {'execs':>5} {'uploads':>7} {'wall s':>7}")
    for n, mode, run, execs, uploads, seconds in rows:
        print(f"{n:>5}  {mode:<8} {run:<17} {execs:>5} {uploads:>7} {seconds:>7.2f}")


if __name__ == "__main__":
    main()
