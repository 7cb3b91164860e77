"""The router-side peer expiry job (operations/expiry_job.py): its cutoff rule, the exact
commands a run issues (given the state read), and real runs of the router deploy and the
uninstall over OpenSSH to the BusyBox-ash fake router: installed with our crontab line next to
the user's, a no-op re-run writes nothing, a moved date brings a peer the job took off back
(``ifup``), no expiring peer removes it all. The job itself, run for real against ``wg`` on a
live interface, is in tests/test_lab.py (the lab router has wireguard-go)."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

from deploys.expiry import cutoff, is_expired, job_entries
from facts.openwrt import (
    CRON_MARK,
    CRONTAB,
    EXPIRY_DATA,
    EXPIRY_HOTPLUG,
    EXPIRY_LOG,
    EXPIRY_SCRIPT,
    parse_expiry,
)
from operations.expiry_job import CRON_LINE, HOTPLUG_SCRIPT, JOB_SCRIPT, _sha, commands, data_lines
from tests.harness.openwrt_host import REPO, OpenWrtHost
from tests.harness.router_runs import (
    output,
    plan_for,
    pyinfra,
    require_router,
    write_inventory,
)

TODAY = datetime.date.today()
KEY = "x" * 43 + "="


# -- the rule and the exact commands (pure) -------------------------------------------------

def test_the_cutoff_is_the_start_of_the_next_local_day_and_agrees_with_the_run():
    day = datetime.date(2026, 12, 31)
    assert cutoff(day) == int(datetime.datetime(2027, 1, 1, 0, 0).timestamp())
    # the run's rule (controller's local date) and the job's (epoch seconds) meet at one instant
    last = datetime.datetime.fromtimestamp(cutoff(day) - 1).date()
    first = datetime.datetime.fromtimestamp(cutoff(day)).date()
    assert (is_expired(day, last), is_expired(day, first)) == (False, True)


def test_job_entries_are_the_peers_left_on_the_router_that_have_a_date(tmp_path):
    soon, past = TODAY + datetime.timedelta(days=3), TODAY - datetime.timedelta(days=1)
    plan = plan_for(tmp_path / "secrets", clients=[], peers=[
        {"name": "a"}, {"name": "b", "expires": str(soon)}, {"name": "c", "expires": str(past)},
        {"name": "d", "expires": str(soon), "enabled": False}])
    assert job_entries(plan.peers) == [("b", plan.peer("b").public_key, cutoff(soon))]


def _found(**kw):
    return {"files": {}, "data": [], "removed": [], "cron": [], **kw}


INSTALLED = _found(files={EXPIRY_SCRIPT: _sha(JOB_SCRIPT), EXPIRY_HOTPLUG: _sha(HOTPLUG_SCRIPT)},
                   data=["interface wg0", f"peer guest {KEY} 1800000000"], cron=[CRON_LINE])


def test_commands_install_everything_then_nothing_when_as_planned():
    entries = [("guest", KEY, 1800000000)]
    cmds = commands(entries, "wg0", ["guest"], _found())
    assert cmds[0] == ("mkdir -p /etc/self-sovereign-ollama /etc/hotplug.d/iface && "
                       "chmod 700 /etc/self-sovereign-ollama")
    assert cmds[3] == (f"(umask 077; cat > {EXPIRY_DATA}.new <<'SSOL_EXPIRY_EOF'\n"
                       f"interface wg0\npeer guest {KEY} 1800000000\nSSOL_EXPIRY_EOF\n) && "
                       f"chmod 600 {EXPIRY_DATA}.new && mv -f {EXPIRY_DATA}.new {EXPIRY_DATA}")
    assert cmds[4:] == [
        "mkdir -p /etc/crontabs",
        f"(umask 077; {{ grep -vF '{CRON_MARK}' {CRONTAB} 2>/dev/null || true; "
        f"echo '{CRON_LINE}'; }} > {CRONTAB}.new) && mv -f {CRONTAB}.new {CRONTAB}",
        "{ /etc/init.d/cron enabled || /etc/init.d/cron enable; } >/dev/null 2>&1",
        "/etc/init.d/cron restart >/dev/null 2>&1",
    ]
    assert commands(entries, "wg0", ["guest"], INSTALLED) == []  # a no-op re-run writes nothing
    # a new date: only the data file is rewritten, cron is left alone
    moved = commands([("guest", KEY, 1800086400)], "wg0", ["guest"], INSTALLED)
    assert len(moved) == 2 and moved[1].startswith(f"(umask 077; cat > {EXPIRY_DATA}.new")


def test_a_peer_the_job_took_off_comes_back_when_it_is_a_peer_again():
    took_off = {**INSTALLED, "removed": [{"name": "guest", "public_key": KEY, "when": 1}]}
    entries = [("guest", KEY, 1800086400)]
    assert commands(entries, "wg0", ["guest"], took_off)[-2:] == ["ifup wg0", f"rm -f {EXPIRY_LOG}"]
    # still expired (this run removes it from uci): no ifup, the log stays for the audit
    assert commands([("other", KEY, 1800000000)], "wg0", ["other"], {
        **took_off, "data": ["interface wg0", f"peer other {KEY} 1800000000"]}) == []


def test_no_expiring_peer_removes_the_job_and_restores_what_it_took_off():
    took_off = {**INSTALLED, "data": ["interface wg9", f"peer guest {KEY} 1"],
                "removed": [{"name": "guest", "public_key": KEY, "when": 1}]}
    assert commands([], "wg0", ["guest"], took_off) == [
        "ifup wg9",  # the interface the job was watching
        "rm -rf /etc/self-sovereign-ollama && rm -f /etc/hotplug.d/iface/"
        "95-self-sovereign-ollama-expiry",
        f"rm -f {EXPIRY_LOG}",
        "mkdir -p /etc/crontabs",
        f"(umask 077; {{ grep -vF '{CRON_MARK}' {CRONTAB} 2>/dev/null || true; }} > "
        f"{CRONTAB}.new) && mv -f {CRONTAB}.new {CRONTAB}",
        "/etc/init.d/cron restart >/dev/null 2>&1 || true",
    ]
    assert commands([], "wg0", [], _found()) == []  # nothing of ours: nothing to do


def test_the_state_read_block_parses():
    found = parse_expiry([
        f"file {EXPIRY_SCRIPT} abc", "data interface wg0", f"data peer guest {KEY} 5",
        f"removed guest {KEY} 7", f"removed guest {KEY} 9", f"cron {CRON_LINE}"])
    assert found == {"files": {EXPIRY_SCRIPT: "abc"},
                     "data": ["interface wg0", f"peer guest {KEY} 5"],
                     "removed": [{"name": "guest", "public_key": KEY, "when": 9}],
                     "cron": [CRON_LINE]}


# -- real runs against the fake router -----------------------------------------------------

@pytest.fixture
def router(tmp_path):
    require_router()  # here, not for the module: the tests above need no router
    with OpenWrtHost(tmp_path, packages=("base-files", "busybox", "dropbear", "firewall4",
                                         "libc", "uci", "kmod-wireguard",
                                         "wireguard-tools")) as host:
        yield host


def _file(router: OpenWrtHost, path: str) -> str | None:
    p = router.root / path.lstrip("/")
    return p.read_text() if p.exists() else None


@pytest.mark.ssh
def test_install_noop_restore_remove_and_uninstall_on_the_router(tmp_path, router):
    secrets = tmp_path / "secrets"
    mine = "0 4 * * * /bin/true # the user's own entry\n"
    (router.root / "etc" / "crontabs").mkdir(parents=True, exist_ok=True)
    (router.root / CRONTAB.lstrip("/")).write_text(mine)
    soon = TODAY + datetime.timedelta(days=3)
    peers = [{"name": "alice_phone"}, {"name": "guest", "expires": str(soon)}]
    inventory = write_inventory(tmp_path / "inv.py", router, secrets, clients=[], peers=peers)

    first = pyinfra(inventory, "-y")
    assert first.returncode == 0, output(first)
    guest = plan_for(secrets, clients=[], peers=peers).peer("guest")
    assert _file(router, EXPIRY_SCRIPT) == JOB_SCRIPT
    assert _file(router, EXPIRY_HOTPLUG) == HOTPLUG_SCRIPT
    assert _file(router, EXPIRY_DATA) == "\n".join(
        data_lines("wg0", [("guest", guest.public_key, cutoff(soon))])) + "\n"
    assert oct((router.root / EXPIRY_SCRIPT.lstrip("/")).stat().st_mode & 0o777) == "0o700"
    assert oct((router.root / EXPIRY_DATA.lstrip("/")).stat().st_mode & 0o777) == "0o600"
    assert _file(router, CRONTAB) == mine + CRON_LINE + "\n"  # the user's line kept, ours added
    assert "cron restart" in router.events()
    assert "/etc/config" not in "".join(c for c in router.commands() if "expire-peers" in c)

    router.clear_events()
    router.reset_counts()
    again = pyinfra(inventory, "-y")
    assert again.returncode == 0, output(again)
    assert router.exec_count() == 1 and router.events() == []  # the read only: no write

    # the job took guest off the interface (as cron would log it); a later date brings it back
    (router.root / EXPIRY_LOG.lstrip("/")).write_text(f"guest {guest.public_key} 1800000000\n")
    later = TODAY + datetime.timedelta(days=9)
    peers[1]["expires"] = str(later)
    write_inventory(tmp_path / "inv.py", router, secrets, clients=[], peers=peers)
    router.clear_events()
    moved = pyinfra(inventory, "-y")
    assert moved.returncode == 0, output(moved)
    assert router.events() == ["ifup wg0"]  # no uci change, no cron restart: only the data
    assert "the router's expiry job took guest off wg0; by the inventory they are peers: " \
        "ifup wg0 brings them back" in output(moved)
    assert _file(router, EXPIRY_LOG) is None
    assert f"peer guest {guest.public_key} {cutoff(later)}" in _file(router, EXPIRY_DATA)

    # no peer expires any more: everything of ours goes, the user's crontab line stays
    peers[1].pop("expires")
    write_inventory(tmp_path / "inv.py", router, secrets, clients=[], peers=peers)
    router.clear_events()
    gone = pyinfra(inventory, "-y")
    assert gone.returncode == 0, output(gone)
    assert [_file(router, p) for p in (EXPIRY_SCRIPT, EXPIRY_DATA, EXPIRY_HOTPLUG)] == [None] * 3
    assert _file(router, CRONTAB) == mine and router.events() == ["cron restart"]

    # installed again, then the uninstall removes it (and keeps the router's config)
    peers[1]["expires"] = str(soon)
    write_inventory(tmp_path / "inv.py", router, secrets, clients=[], peers=peers)
    assert pyinfra(inventory, "-y").returncode == 0
    config = router.read_config("network")
    un = subprocess.run([sys.executable, "-m", "pyinfra", str(inventory), "deploys/uninstall.py",
                         "--limit", "router", "-y"], cwd=REPO, capture_output=True, text=True,
                        timeout=300, stdin=subprocess.DEVNULL)
    assert un.returncode == 0, un.stdout + un.stderr
    assert _file(router, EXPIRY_SCRIPT) is None and _file(router, CRONTAB) == mine
    assert router.read_config("network") == config
