"""Sample every process's command line and environment while something runs (Linux ``/proc``).

Used by the end-to-end tests that prove no key ever appears on a command line or in an
environment, on the controller, the fake Macs and the fake router alike: they all are
processes of this machine (the lab's hosts are namespaces, not virtual machines), so one
sampler that reads ``/proc/<pid>/cmdline`` and ``/proc/<pid>/environ`` of every process sees
them all. Needs root to read other users' environments (the fake Macs' login users, sshd).

A process living shorter than the sampling interval can be missed; the sampler therefore
polls as fast as it can (a tight loop with a tiny sleep) and reports how many samples and
distinct processes it saw, so a test can check it really observed the run (e.g. the sshd
children and the ``sh -c`` of pyinfra's commands).

Example::

    with ArgvSampler() as sampler:
        subprocess.run([...deploy...])
    assert sampler.find(keys) == []
    assert sampler.stats()["processes"] > 100
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable


class ArgvSampler:
    """Background thread that records every distinct argv and environment it sees."""

    def __init__(self, interval: float = 0.0005, exclude_self: bool = True) -> None:
        self.interval = interval
        self.exclude = {os.getpid()} if exclude_self else set()
        self.argvs: set[str] = set()
        self.environs: set[str] = set()
        #: text -> the pid namespaces it was seen in (``ns_of(pid)``), to tell hosts apart
        self.where: dict[str, set[str]] = {}
        self.samples = 0
        self._seen: set[tuple[int, float]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- sampling ----------------------------------------------------------------------------
    @staticmethod
    def _read(path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:  # gone, or not ours to read
            return b""

    def sample_once(self) -> None:
        """Read every process's argv and environment once."""
        try:
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return
        for pid in pids:
            if pid in self.exclude:
                continue
            argv = self._read(f"/proc/{pid}/cmdline")
            if not argv:
                continue
            ns = self.ns_of(pid)
            text = argv.replace(b"\0", b" ").decode(errors="replace")
            self.argvs.add(text)
            self.where.setdefault(text, set()).add(ns)
            env = self._read(f"/proc/{pid}/environ")
            if env:
                etext = env.replace(b"\0", b"\n").decode(errors="replace")
                self.environs.add(etext)
                self.where.setdefault(etext, set()).add(ns)
            self._seen.add((pid, hash(argv)))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            time.sleep(self.interval)

    def start(self) -> ArgvSampler:
        self._thread = threading.Thread(target=self._run, name="argv-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample_once()

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
        """How much was observed: ``samples``, distinct ``processes``, distinct ``argvs``."""
        return {"samples": self.samples, "processes": len(self._seen),
                "argvs": len(self.argvs)}

    def saw(self, fragment: str) -> bool:
        """Whether some sampled command line contains ``fragment``."""
        return any(fragment in argv for argv in self.argvs)
