"""Safe apply without a router: what the state read reports about earlier applies, and what a
run decides about it (confirm, cancel, adopt, report, remove); the generated scripts' rules."""

from __future__ import annotations

import re

from facts.openwrt import PACKAGES, _state_script, parse_safety, parse_state
from operations.uci import all_reloads, compute_changes, needs_rollback_guard
from operations.uci_apply import apply_script, confirm_command, job_script, settle

T1, T2, T3, T4 = "1" * 16, "2" * 16, "3" * 16, "4" * 16

SAFETY = [
    "now 1000",
    f"guard {T1} armed=1 when=900 seconds=90 packages=network,firewall,dhcp intent=abc",
    f"guard {T2} armed=1 when=990 seconds=90 packages=network,firewall,dhcp intent=old",
    f"guard {T3} armed= intent=",
    f"rolledback when=950 token={T4} reason=commit_failed_firewall restored=network,firewall,dhcp",
    f"notlive {T3} /etc/init.d/network reload;/etc/init.d/firewall reload;",
    f"leftover save-{T2}",
    "guard not-a-token armed=1",
    "notlive ../../etc rm -rf /;",
]


def test_parse_safety():
    s = parse_safety(SAFETY)
    assert s["now"] == 1000
    assert [(g["token"], g["armed"], g["age"], g["intent"]) for g in s["guards"]] == [
        (T1, True, 100, "abc"), (T2, True, 10, "old"), (T3, False, 0, "")]
    assert s["guards"][0]["packages"] == list(PACKAGES) and s["guards"][0]["seconds"] == 90
    assert s["rollbacks"] == [{"token": T4, "when": 950, "reason": "commit failed firewall",
                               "restored": list(PACKAGES)}]
    assert s["not_live"] == [{"token": T3, "reload": ["/etc/init.d/network reload",
                                                      "/etc/init.d/firewall reload"]}]
    assert s["leftovers"] == [f"save-{T2}"] and s["lock"] is None


def test_state_read_reports_the_past_and_is_complete():
    out = ["##pyinfra-openwrt##safety", *SAFETY, "##pyinfra-openwrt##end"]
    state = parse_state(out)
    assert state["complete"] and [g["token"] for g in state["safety"]["guards"]] == [T1, T2, T3]


def test_settle_decisions():
    past = settle(parse_safety(SAFETY), checksum="abc")
    # T1 committed what is live: confirmed; T2's change is not live: cancelled; T3 committed but
    # never went live: adopted (finished under a new guard with its backup)
    assert past.actions == [(T1, "confirm"), (T2, "cancel"), (T3, "adopt")]
    assert past.consume == [T4] and past.finished == [T3] and past.leftovers == [f"save-{T2}"]
    text = "\n".join(m for _, m in past.messages)
    assert f"ROLLED BACK: apply {T4}" in text and "(commit failed firewall)" in text
    assert "restored: network, firewall, dhcp" in text
    assert f"removing our own leftover save-{T2}" in text
    assert [lvl for lvl, m in past.messages if "ROLLED BACK" in m] == ["error"]
    assert not settle(parse_safety(["now 5"]), "abc")  # nothing to settle: falsy


def test_reloads_owed_by_earlier_applies_are_kept_and_filtered():
    safety = parse_safety(SAFETY)
    changes = compute_changes({"network": [], "firewall": [], "dhcp": []})
    reloads = all_reloads(changes, safety["not_live"])
    assert reloads == ["/etc/init.d/network reload", "/etc/init.d/firewall reload"]
    assert needs_rollback_guard(reloads)
    # a marker cannot smuggle a command in
    assert all_reloads(changes, [{"token": T1, "reload": ["rm -rf /", "ifup wg0"]}]) == [
        "ifup wg0"]


def test_scripts_act_only_on_their_own_token():
    job = job_script(T1, 5)
    assert f"t={T1}" in job and 'if [ -f "$g/armed" ]' in job and "sleep 5" in job
    assert "lock" in job.split("sleep 5", 1)[1]  # the restore happens under the lock
    confirm = confirm_command(T1)
    assert f"t={T1}" in confirm and "guard-$t" in confirm and "too late" in confirm
    script = apply_script(["set network.x=interface"], ["network.x='interface'"], ["network"],
                          ["/etc/init.d/network reload"], "sum", T2, rollback_seconds=5,
                          settle=[(T1, "confirm")], consume=[T4], leftovers=[f"save-{T3}"])
    # staged in its own save dir, never the shared one; settles T1 before anything else
    assert 'uci -t "$s" batch' in script and 'uci -t "$s" commit network' in script
    assert not re.search(r"^uci (batch|commit)", script, re.M)
    lock_at = script.index("\nlock\n")
    assert lock_at < script.index(f'"$d/guard-{T1}"') < script.index("pending=$(uci changes")
    assert script.index("restore commit_failed_network") > script.index('"$g/armed"')
    assert "trap '' HUP INT TERM PIPE" in script


def test_no_key_reaches_a_command_line_in_the_state_read():
    script = _state_script(PACKAGES)
    assert "printf %s '" not in script
    assert "sha256sum < '" in script  # the value is hashed from a file
