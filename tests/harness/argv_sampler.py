"""Sample every process's command line and environment while something runs (Linux ``/proc``).

Used by the end-to-end tests that prove no key ever appears on a command line or in an
environment, on the controller, the fake Macs and the fake router alike: they all are
processes of this machine (the lab's hosts are namespaces, not virtual machines), so one
sampler that reads ``/proc/<pid>/cmdline`` and ``/proc/<pid>/environ`` of every process sees
them all. Needs root to read other users' environments (the fake Macs' login users, sshd).

The sampling runs in a separate process (this file, run as a script): pyinfra monkey-patches
``threading`` with gevent when it is imported in the test process, and a busy greenlet would
starve a sampling thread. The sampler process skips itself and the test process, keeps every
distinct argv and environment with the PID namespaces it was seen in, and hands them over on
its stdout when its stdin is closed (nothing is written to disk); the secrets to look for are
only ever compared in the test process, after the run.

A process living shorter than a sweep can be missed; the sampler therefore sweeps as fast as
it can (a tiny sleep between sweeps) and reports how many sweeps and distinct processes it saw,
so a test can check it really observed the run (e.g. the sshd children and the ``sh -c`` of
pyinfra's commands).

Example::

    with ArgvSampler() as sampler:
        subprocess.run([...deploy...])
    assert sampler.find(keys) == []
    assert sampler.stats()["processes"] > 100
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable


class ArgvSampler:
    """Records every distinct argv and environment of every process (but the test process
    and the sampler's own) from :meth:`start` to :meth:`stop`, in a sampler subprocess."""

    def __init__(self, interval: float = 0.0005) -> None:
        self.interval = interval
        self.argvs: set[str] = set()
        self.environs: set[str] = set()
        #: text -> the pid namespaces it was seen in (``ns_of(pid)``), to tell hosts apart
        self.where: dict[str, set[str]] = {}
        self.samples = 0
        self.processes = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # -- sampling ----------------------------------------------------------------------------
    def start(self) -> ArgvSampler:
        """Start the sampler process; returns once it has swept ``/proc`` once."""
        self._proc = subprocess.Popen([sys.executable, "-S", __file__, str(self.interval)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline() != b"ready\n":
            self._proc.kill()
            self._proc.wait()
            raise RuntimeError("the argv sampler did not start")
        return self

    def stop(self) -> None:
        """Stop the sampler (after one last sweep) and take over what it saw."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"the argv sampler failed (exit {proc.returncode})")
        data = json.loads(out)
        for kind, texts in (("argvs", self.argvs), ("environs", self.environs)):
            for encoded, namespaces in data[kind]:
                text = base64.b64decode(encoded).decode(errors="replace")
                texts.add(text)
                self.where.setdefault(text, set()).update(namespaces)
        self.samples, self.processes = data["samples"], data["processes"]

    def __enter__(self) -> ArgvSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def ns_of(pid: int | str) -> str:
        """The pid namespace of a process (``pid:[4026531836]``; "" if it is gone)."""
        try:
            return os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            return ""

    # -- results -----------------------------------------------------------------------------
    def find(self, secrets: Iterable[str], exclude_ns: Iterable[str] = (),
             only_ns: Iterable[str] = ()) -> list[str]:
        """Descriptions of every sampled argv or environment that contains one of ``secrets``
        (the secret itself is never in the description: only its first 6 characters).
        ``exclude_ns``: pid namespaces (:meth:`ns_of`) whose processes are not looked at;
        ``only_ns``: look only at processes of these (e.g. the lab router's, whose ``ns_pid``
        is in the lab's state file)."""
        hits = []
        skip, only = set(exclude_ns), set(only_ns)

        def counted(text: str) -> bool:
            seen = self.where.get(text, {""})
            if only and not seen & only:
                return False
            return not skip or bool(seen - skip)

        for secret in {s.strip() for s in secrets if s and s.strip()}:
            for argv in filter(counted, self.argvs):
                if secret in argv:
                    shown = argv.replace(secret, "<KEY>")[:300]
                    hits.append(f"argv holds {secret[:6]}...: {shown}")
            for env in filter(counted, self.environs):
                if secret in env:
                    line = next(x for x in env.splitlines() if secret in x)
                    hits.append(f"environment holds {secret[:6]}...: "
                                f"{line.replace(secret, '<KEY>')[:300]}")
        return hits

    def stats(self) -> dict[str, int]:
        """How much was observed: ``samples`` (sweeps), distinct ``processes``, distinct
        ``argvs``."""
        return {"samples": self.samples, "processes": self.processes, "argvs": len(self.argvs)}

    def saw(self, fragment: str) -> bool:
        """Whether some sampled command line contains ``fragment``."""
        return any(fragment in argv for argv in self.argvs)


# -- the sampler process -----------------------------------------------------------------------


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone, or not ours to read
        return b""


def _sample(interval: float) -> None:  # pragma: no cover - runs in the sampler process
    """Sweep /proc until stdin is closed; then print what was seen as one JSON document."""
    skip = {str(os.getpid()), str(os.getppid())}
    argvs: dict[bytes, set[str]] = {}
    environs: dict[bytes, set[str]] = {}
    seen: set[tuple[str, bytes]] = set()
    samples = 0

    def sweep() -> None:
        for entry in os.scandir("/proc"):
            pid = entry.name
            if not pid.isdigit() or pid in skip:
                continue
            argv, env = _read(f"/proc/{pid}/cmdline"), _read(f"/proc/{pid}/environ")
            if not argv and not env:  # a kernel thread, gone, or not readable
                continue
            ns = ArgvSampler.ns_of(pid)
            if argv:
                argvs.setdefault(argv.replace(b"\0", b" "), set()).add(ns)
                seen.add((pid, argv))
            if env:
                environs.setdefault(env.replace(b"\0", b"\n"), set()).add(ns)

    sweep()
    samples += 1
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while not select.select([sys.stdin], [], [], 0)[0]:
        sweep()
        samples += 1
        time.sleep(interval)
    sweep()  # the last look, after the run
    samples += 1

    def listed(texts: dict[bytes, set[str]]) -> list:
        return [[base64.b64encode(t).decode(), sorted(ns)] for t, ns in texts.items()]

    json.dump({"argvs": listed(argvs), "environs": listed(environs), "samples": samples,
               "processes": len(seen)}, sys.stdout)


if __name__ == "__main__":
    _sample(float(sys.argv[1]))
