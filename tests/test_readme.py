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


def layout() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.+?)\n```", section, re.S)[0]


def tracked_top_level() -> set[str]:
    """Top-level entries of the checkout that git tracks (or, without git, that it does not
    ignore), directories with a trailing slash."""
    import subprocess

    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if names.returncode == 0 and names.stdout:
        firsts = {line.split("/", 1)[0] + ("/" if "/" in line else "")
                  for line in names.stdout.splitlines()}
        return {n for n in firsts if (REPO / n.rstrip("/")).exists()}
    ignored = [line.strip().rstrip("/") for line in (REPO / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    from fnmatch import fnmatch

    return {p.name + ("/" if p.is_dir() else "") for p in REPO.iterdir()
            if p.name != ".git" and not any(fnmatch(p.name, pat) for pat in ignored)}


def test_layout_lists_exactly_the_top_level_of_the_tree():
    listed = [line.split()[0] for line in layout().splitlines() if line and not line[0].isspace()]
    assert len(listed) == len(set(listed)) >= 8
    assert set(listed) == tracked_top_level()


def test_files_the_layout_names_exist():
    """``name.py`` (or ``name/``, ``sub/name.sh``) on a directory's lines is in that dir."""
    current = None
    missing = []
    for line in layout().splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
            words = line.split()[1:]
        else:
            words = line.split()
        if not current or not current.endswith("/"):
            continue
        for word in words:
            name = word.strip("(),;:")
            if re.fullmatch(r"[\w./-]+\.(py|sh)|[a-z_]+/", name) and name != current:
                if not (REPO / current / name).exists():
                    missing.append(current + name)
    assert missing == []
