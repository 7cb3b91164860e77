"""The client's shell profiles for real: the ClientState fact's command and the operations'
commands run by ``sh`` against a temporary ``$HOME`` (with the one-true-awk, macOS' awk, when it
is installed), N times. Afterwards each profile has exactly one block, the user's own lines are
untouched, and real login/interactive ``bash`` and ``zsh`` get the env contract and the
``claude-ollama`` function. Uninstall removes the blocks and the env file again."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand, StringCommand
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from deploys.client_plan import (
    ENV_FILE,
    profile_body,
    profile_targets,
    render_env,
    server_base_url,
    validate_client,
)
from facts.client import ClientState, begin_marker, end_marker
from operations import client
from tests.harness.fake_mac import ORIGINAL_ZSHRC

BASE = server_base_url("192.168.100.10", 11434)
SETTINGS, _ = validate_client("alice-mac", {
    "aider": True, "aider_models": ["qwen2.5-coder:32b"],
    "claude_code": True, "claude_models": {"default": "qwen3-coder:30b"},
})
AWKS = {
    "one-true-awk (macOS)": "original-awk",
    "mawk": "mawk",
    "busybox awk": "busybox",
}


@pytest.fixture(params=list(AWKS))
def awk_bin(request, tmp_path: Path) -> Path:
    """A directory whose ``awk`` is the awk under test (first on PATH)."""
    tool = shutil.which(AWKS[request.param])
    if tool is None:
        pytest.skip(f"{AWKS[request.param]} is not installed (.ci/run: apt-get install "
                    f"{'original-awk' if 'macOS' in request.param else AWKS[request.param]})")
    bindir = tmp_path / "awkbin"
    bindir.mkdir()
    if request.param == "busybox awk":
        (bindir / "awk").write_text(f'#!/bin/sh\nexec {tool} awk "$@"\n')
        (bindir / "awk").chmod(0o755)
    else:
        (bindir / "awk").symlink_to(tool)
    return bindir


class FakeMacHome:
    """Runs the fact and the operations' commands locally, as the SSH user would over SSH."""

    def __init__(self, home: Path, awk_bin: Path) -> None:
        self.home = home
        self.env = {"HOME": str(home), "PATH": f"{awk_bin}:/usr/bin:/bin", "TMPDIR": str(home)}
        self.commands_run = 0

    def state(self) -> dict:
        out = subprocess.run(["sh", "-c", ClientState().command(prefix="/nonexistent")],
                             capture_output=True, text=True, env=self.env, check=True)
        return ClientState().process(out.stdout.splitlines())

    def apply(self, op, **kwargs) -> int:
        fake = create_host(FakeState(), facts={})
        with ctx_state.use(FakeState()), ctx_host.use(fake):
            commands = list(op._inner(**kwargs))
        for command in commands:
            if isinstance(command, FileUploadCommand):
                command.src.seek(0)
                Path(command.dest).write_bytes(command.src.read())
            else:
                assert isinstance(command, StringCommand)
                result = subprocess.run(["sh", "-c", command.get_raw_value()],
                                        capture_output=True, text=True, env=self.env)
                assert result.returncode == 0, result.stderr
        self.commands_run += len(commands)
        return len(commands)

    def converge(self, claude: bool = True) -> int:
        """What deploys/client.py does for the env contract; returns the commands run."""
        state = self.state()
        before = self.commands_run
        env_path = f"{self.home}/{ENV_FILE}"
        self.apply(client.private_directory, path=str(Path(env_path).parent),
                   state=state["dirs"].get(str(Path(env_path).parent)))
        self.apply(client.managed_file, path=env_path,
                   content=render_env(BASE, SETTINGS, claude_offered=claude),
                   state=state["files"].get(env_path))
        for name, create in profile_targets(state["profiles"]):
            self.apply(client.profile_block, path=f"{self.home}/{name}", body=profile_body(),
                       state=state["profiles"].get(name), create=create)
        return self.commands_run - before

    def uninstall(self) -> int:
        state = self.state()
        before = self.commands_run
        for name in state["profiles"]:
            self.apply(client.profile_block, path=f"{self.home}/{name}", body="",
                       state=state["profiles"][name], present=False)
        self.apply(client.remove_paths,
                   paths=[d for d in state["dirs"] if d.endswith("self-sovereign-ollama")])
        return self.commands_run - before


def _blocks(path: Path, name: str = "self-sovereign-ollama") -> int:
    lines = path.read_text().splitlines()
    begins, ends = lines.count(begin_marker(name)), lines.count(end_marker(name))
    assert begins == ends
    return begins


def _login_env(shell: list[str], home: Path, bindir: Path | None = None) -> dict[str, str]:
    script = "env; if type claude-ollama >/dev/null 2>&1; then echo HAS_CLAUDE_OLLAMA=yes; fi"
    if bindir:  # after the profiles: a login shell's /etc/profile may reset PATH
        script += f"; PATH={bindir}:$PATH; claude-ollama --version"
    result = subprocess.run([*shell, script], capture_output=True, text=True, timeout=30,
                            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def _fake_claude(tmp_path: Path) -> Path:
    bindir = tmp_path / "claudebin"
    bindir.mkdir(exist_ok=True)
    (bindir / "claude").write_text("#!/bin/sh\necho CLAUDE_SAW_BASE_URL=$ANTHROPIC_BASE_URL\n")
    (bindir / "claude").chmod(0o755)
    return bindir


N_RUNS = 4


def test_blocks_idempotent_and_shells_get_the_contract(tmp_path: Path, awk_bin: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".zshrc").write_text(ORIGINAL_ZSHRC)
    (home / ".bashrc").write_text("# my bashrc\nalias la='ls -a'")  # no final newline
    mac = FakeMacHome(home, awk_bin)

    first = mac.converge()
    # private dir, env file (upload + rename), ~/.zshrc, new ~/.bash_profile, ~/.bashrc
    assert first == 6
    for _ in range(N_RUNS - 1):
        assert mac.converge() == 0  # every further run: nothing to do

    for name in (".zshrc", ".bash_profile", ".bashrc"):
        assert _blocks(home / name) == 1, name
    zshrc = (home / ".zshrc").read_text()
    assert _blocks(home / ".zshrc", "ai-client") == 0 and "CLAUDE_OLLAMA_FLAGS" not in zshrc
    assert zshrc.startswith("export EDITOR=vim\n# >>> self-sovereign-ollama >>>\n")
    assert zshrc.endswith("# <<< self-sovereign-ollama <<<\nalias ll='ls -l'\n")
    assert (home / ".bashrc").read_text() == (
        f"# my bashrc\nalias la='ls -a'\n\n{begin_marker('self-sovereign-ollama')}\n"
        f"{profile_body()}\n{end_marker('self-sovereign-ollama')}\n")
    assert oct((home / ".config/self-sovereign-ollama").stat().st_mode & 0o777) == "0o700"

    bindir = _fake_claude(tmp_path)
    shells = [["bash", "-l", "-c"]]  # a login bash (Terminal.app's bash) reads ~/.bash_profile
    if shutil.which("zsh"):
        shells.append(["zsh", "-i", "-c"])  # an interactive zsh reads ~/.zshrc
    for shell in shells:
        got = _login_env(shell, home, bindir)
        assert got["OLLAMA_API_BASE"] == BASE, shell
        assert got["OPENAI_API_BASE"] == BASE + "/v1", shell
        assert got["OPENAI_API_KEY"] == "ollama", shell
        assert got["AIDER_MODEL"] == "ollama_chat/qwen2.5-coder:32b", shell
        assert got["HAS_CLAUDE_OLLAMA"] == "yes", shell
        assert got["CLAUDE_SAW_BASE_URL"] == BASE, shell  # the function really runs claude
    if not shutil.which("zsh"):
        pytest.skip("zsh is not installed (.ci/run: apt-get install zsh): only bash checked")


def test_profile_only_user_and_claude_withdrawn(tmp_path: Path, awk_bin: Path) -> None:
    """A bash user with only ~/.profile keeps it as the login file (no ~/.bash_profile that
    would hide it); withdrawing claude-ollama (server downgraded) removes the function."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".profile").write_text("export FROM_PROFILE=1\n")
    mac = FakeMacHome(home, awk_bin)
    assert mac.converge() == 5  # dir, env (upload + rename), ~/.zshrc (created), ~/.profile
    assert mac.converge() == 0
    assert not (home / ".bash_profile").exists()
    got = _login_env(["bash", "-l", "-c"], home)
    assert got["FROM_PROFILE"] == "1" and got["OPENAI_API_KEY"] == "ollama"
    assert got["HAS_CLAUDE_OLLAMA"] == "yes"
    assert mac.converge(claude=False) == 2  # only the env file changes (upload + rename)
    assert "HAS_CLAUDE_OLLAMA" not in _login_env(["bash", "-l", "-c"], home)
    sh = subprocess.run(["sh", "-l", "-c", "echo $OPENAI_API_BASE"], capture_output=True,
                        text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert sh.stdout.strip() == BASE + "/v1" and sh.stderr == ""


def test_uninstall_removes_blocks_and_env(tmp_path: Path, awk_bin: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".zshrc").write_text(ORIGINAL_ZSHRC)
    mac = FakeMacHome(home, awk_bin)
    mac.converge()
    assert mac.uninstall() == 3  # ~/.zshrc, ~/.bash_profile, rm -rf the private dir
    assert mac.uninstall() == 0
    zshrc = (home / ".zshrc").read_text()
    assert zshrc == "export EDITOR=vim\nalias ll='ls -l'\n"
    assert "self-sovereign-ollama" not in (home / ".bash_profile").read_text()
    assert not (home / ".config" / "self-sovereign-ollama").exists()
    assert "OLLAMA_API_BASE" not in _login_env(["bash", "-l", "-c"], home)


def test_unterminated_marker_is_refused_not_guessed(tmp_path: Path, awk_bin: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    text = "a\n# >>> self-sovereign-ollama >>>\nb\nc\n"
    (home / ".zshrc").write_text(text)
    mac = FakeMacHome(home, awk_bin)
    with pytest.raises(Exception, match="line 2: '# >>> self-sovereign-ollama >>>' has no"):
        mac.converge()
    assert (home / ".zshrc").read_text() == text


def test_symlinked_profile_is_written_through(tmp_path: Path, awk_bin: Path) -> None:
    """Dotfiles managers symlink ~/.zshrc into a repository: the link must stay a link."""
    home = tmp_path / "home"
    (home / "dotfiles").mkdir(parents=True)
    (home / "dotfiles" / "zshrc").write_text("export A=1\n")
    (home / "dotfiles" / "zshrc").chmod(0o640)
    (home / ".zshrc").symlink_to("dotfiles/zshrc")
    mac = FakeMacHome(home, awk_bin)
    mac.converge()
    assert (home / ".zshrc").is_symlink()
    assert _blocks(home / "dotfiles" / "zshrc") == 1
    # replaced by a rename next to the real file, its mode kept, no temp file left
    assert (home / "dotfiles" / "zshrc").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in (home / "dotfiles").iterdir()) == ["zshrc"]


def test_upload_helper_matches_pyinfra_upload() -> None:
    """The helper above writes uploads the way pyinfra would (bytes, exact)."""
    cmd = FileUploadCommand(io.BytesIO(b"x\n"), "/tmp/x")
    assert cmd.src.read() == b"x\n"
