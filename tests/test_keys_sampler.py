"""The argv/environment sampler (tests/harness/argv_sampler.py) itself: it does see a secret
put on a command line or in an environment, and filters by pid namespace."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.harness.argv_sampler import ArgvSampler

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_secret_on_a_command_line_or_in_an_environment_is_found():
    argv_secret, env_secret = "argv-" + os.urandom(8).hex(), "env-" + os.urandom(8).hex()
    with ArgvSampler() as sampler:
        subprocess.run(["sh", "-c", f"sleep 0.3; : {argv_secret}"], check=True)
        subprocess.run(["sleep", "0.3"], env={"PATH": "/usr/bin:/bin", "K": env_secret},
                       check=True)
    hits = sampler.find([argv_secret, env_secret, "never-seen-" + os.urandom(8).hex()])
    assert len(hits) == 2
    assert not any(argv_secret in h or env_secret in h for h in hits)  # never printed
    assert any(h.startswith("argv holds") for h in hits)
    assert any(h.startswith("environment holds") and "K=<KEY>" in h for h in hits)
    me = ArgvSampler.ns_of("self")
    assert len(sampler.find([argv_secret], only_ns=[me])) == 1
    assert sampler.find([argv_secret], exclude_ns=[me]) == []
    assert sampler.stats()["samples"] >= 2 and sampler.saw("sleep 0.3")
