"""README promises: exactly two commands (the main job on the lab, the tests), both from a fresh
Debian/Ubuntu machine; CI runs the README's test command verbatim."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = "sh tests/lab/debian-packages.sh"
VENV = "python3 -m venv .venv && . .venv/bin/activate && pip install '.[test]'"


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.+?)\n```", section, re.S)


def test_readme_has_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)


def test_both_commands_install_the_packages_and_a_virtual_environment():
    """A stock Debian/Ubuntu Python is externally managed: pip only inside a venv. The lab
    imports the test harnesses, so the first command installs the [test] extra as well."""
    for command in readme_commands():
        assert command.startswith(f"{PACKAGES} && {VENV} && "), command
        assert "sudo " not in command and "pip install ." not in command


def test_first_command_brings_the_lab_up_and_converges_it():
    first = readme_commands()[0]
    lab = "python3 -m tests.lab up && pyinfra inventories/lab.py deploys/all.py"
    assert first.endswith(f" && {lab}")


def test_second_command_runs_the_tests():
    assert readme_commands()[1].endswith(" && python3 -m pytest -q")


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_the_package_list_is_one_script():
    """The Debian packages are listed once, in the script both commands and CI run."""
    script = (REPO / "tests/lab/debian-packages.sh").read_text()
    listed = script.split('PACKAGES="', 1)[1].split('"', 1)[0].split()
    for needed in ("python3-venv", "openssh-server", "busybox", "wireguard-tools",
                   "wireguard-go", "nftables", "haproxy", "zbar-tools", "sudo"):
        assert needed in listed
    assert len(listed) == len(set(listed))
    ci = (REPO / ".ci" / "run").read_text()
    assert "apt-get" not in ci and "haproxy" not in ci
