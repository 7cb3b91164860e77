"""deploys/client_plan.py: client data validation (errors like the plan's) and the rendered
files, parsed back field by field (env file by real shells, YAML, plist)."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploys.client_plan import (
    DEFAULT_NUM_CTX,
    AiderModel,
    ClaudeModels,
    profile_targets,
    render_aider_conf,
    render_daemon_plist,
    render_env,
    render_model_settings,
    server_base_url,
    server_num_ctx,
    undeclared_models,
    validate_client,
)

BASE = server_base_url("192.168.100.10", 11434)
FULL = {
    "aider": True,
    "aider_models": ["qwen2.5-coder:32b", {"name": "qwen2.5-coder:7b", "num_ctx": 8192}],
    "claude_code": True,
    "claude_models": {"default": "qwen3-coder:30b", "haiku": "qwen2.5-coder:7b"},
}


def settings(data: dict | None = None, **kwargs):
    result, errors = validate_client("alice-mac", data if data is not None else FULL, **kwargs)
    assert errors == []
    assert result is not None
    return result


# -- validation -----------------------------------------------------------------------------


def test_defaults() -> None:
    s = settings({})
    assert (s.wg_interface_name, s.tunnel_at_boot, s.aider, s.claude_code) == (
        "wg-ollama", True, False, False)
    assert s.aider_models == () and s.claude_models is None and s.pin_ollama is None
    assert s.wireguard_config == "/opt/homebrew/etc/wireguard/wg-ollama.conf"
    assert s.daemon_plist == (
        "/Library/LaunchDaemons/org.self-sovereign-ollama.wireguard.wg-ollama.plist")


def test_full_settings() -> None:
    s = settings(FULL)
    assert s.aider_models == (AiderModel("qwen2.5-coder:32b", DEFAULT_NUM_CTX),
                              AiderModel("qwen2.5-coder:7b", 8192))
    assert s.aider_model.aider_name == "ollama_chat/qwen2.5-coder:32b"
    assert s.claude_models == ClaudeModels(
        default="qwen3-coder:30b", opus="qwen3-coder:30b", sonnet="qwen3-coder:30b",
        haiku="qwen2.5-coder:7b", subagent="qwen3-coder:30b")


def test_num_ctx_follows_the_server_warm_up() -> None:
    server = {"ollama_context_length": 65536, "ollama_warm_num_ctx": None}
    assert server_num_ctx(server) == 65536
    assert server_num_ctx({"ollama_warm_num_ctx": 16384, "ollama_context_length": 65536}) == 16384
    assert server_num_ctx(None) is None and server_num_ctx({}) is None
    s = settings({"aider": True, "aider_models": ["m:1"]}, default_num_ctx=65536)
    assert s.aider_models[0].num_ctx == 65536
    s = settings({"aider": True, "aider_models": ["m:1"], "aider_num_ctx": 4096},
                 default_num_ctx=65536)
    assert s.aider_models[0].num_ctx == 4096


def test_claude_models_as_one_name() -> None:
    s = settings({"claude_code": True, "claude_models": "qwen3-coder:30b"})
    assert {s.claude_models.default, s.claude_models.haiku} == {"qwen3-coder:30b"}


def test_none_means_unset() -> None:  # pyinfra host data answers None for missing keys
    s = settings({"tunnel_at_boot": None, "aider": None, "pin_ollama": None})
    assert s.tunnel_at_boot is True and s.aider is False and s.pin_ollama is None


BAD = [
    ({"wg_interface_name": "wg ollama"}, "wg_interface_name: 'wg ollama' (wg-quick interface "
     "names are 1-15 of [A-Za-z0-9_=+.-])"),
    ({"wg_interface_name": "a-very-long-tunnel-name"}, "wg_interface_name: "
     "'a-very-long-tunnel-name' (wg-quick interface names are 1-15 of [A-Za-z0-9_=+.-])"),
    ({"wg_interface_name": "utun3"}, "wg_interface_name: 'utun3' (utunN names are macOS "
     "devices, choose another name)"),
    ({"tunnel_at_boot": "yes"}, "tunnel_at_boot: 'yes' (expected True or False)"),
    ({"aider": 1}, "aider: 1 (expected True or False)"),
    ({"claude_code": "true"}, "claude_code: 'true' (expected True or False)"),
    ({"uninstall_aider": "no"}, "uninstall_aider: 'no' (expected True or False)"),
    ({"pin_ollama": "yes"}, "pin_ollama: 'yes' (expected True or False)"),
    ({"aider": True}, "aider_models: [] (aider = True needs at least one model)"),
    ({"aider_models": "bad model"}, "aider_models[0]: 'bad model' (not an Ollama model name "
     "like 'qwen2.5-coder:32b')"),
    ({"aider_models": {"a": 1}}, "aider_models: {'a': 1} (expected a list of model names or "
     "{'name', 'num_ctx'})"),
    ({"aider_models": ["ollama_chat/qwen2.5-coder:32b"]}, "aider_models[0]: "
     "'ollama_chat/qwen2.5-coder:32b' (give the Ollama name without Aider's 'ollama_chat/' "
     "prefix)"),
    ({"aider_models": [{"name": "m:1", "num_ctx": 100}]}, "aider_models[0].num_ctx: 100 "
     "(expected a whole number of tokens from 512 to 2097152)"),
    ({"aider_models": [{"name": "m:1", "ctx": 4096}]}, "aider_models[0].ctx: 4096 (unknown "
     "field (expected name, num_ctx))"),
    ({"aider_models": ["m:1", "m:1"]}, "aider_models[1]: 'm:1' (listed twice)"),
    ({"aider_num_ctx": "32k"}, "aider_num_ctx: '32k' (expected a whole number of tokens from "
     "512 to 2097152)"),
    ({"aider_version": "latest"}, "aider_version: 'latest' (expected a version like '0.86.1')"),
    ({"claude_code": True}, "claude_models: None (claude_code = True needs a model, e.g. "
     "'qwen3-coder:30b')"),
    ({"claude_models": {"haiku": "m:1"}}, "claude_models: {'haiku': 'm:1'} (needs a 'default' "
     "model)"),
    ({"claude_models": {"default": "m:1", "fast": "m:2"}}, "claude_models.fast: 'm:2' (unknown "
     "role (expected default, opus, sonnet, haiku, subagent))"),
    ({"claude_models": {"default": "m 1"}}, "claude_models.default: 'm 1' (not an Ollama model "
     "name like 'qwen3-coder:30b')"),
    ({"claude_models": ["m:1"]}, "claude_models: ['m:1'] (expected a model name or a dict with "
     "'default' (+ opus, sonnet, haiku, subagent))"),
    ({"server_ollama_version": "latest"}, "server_ollama_version: 'latest' (expected a version "
     "like '0.14.0')"),
    ({"server_ollama_version": 14}, "server_ollama_version: 14 (expected a version like "
     "'0.14.0')"),
    ({"homebrew_prefix": "opt/homebrew"}, "homebrew_prefix: 'opt/homebrew' (expected "
     "Homebrew's prefix, e.g. '/opt/homebrew')"),
]


@pytest.mark.parametrize(("data", "error"), BAD, ids=[e.split(":")[0] + str(i)
                                                     for i, (_, e) in enumerate(BAD)])
def test_bad_data(data: dict, error: str) -> None:
    result, errors = validate_client("bob-mac", data)
    assert result is None
    assert errors == [f"bob-mac: {error}"]


def test_every_error_is_reported_at_once() -> None:
    _, errors = validate_client("bob-mac", {"aider": "y", "claude_code": "y", "tunnel_at_boot": 0})
    assert [e.split(":")[1].strip() for e in errors] == ["tunnel_at_boot", "aider", "claude_code"]


# -- rendered files, parsed back --------------------------------------------------------------


def _source(shell: list[str], env_file: Path, tmp_path: Path, script: str = "env") -> str:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    result = subprocess.run([*shell, f". {env_file}; {script}"], capture_output=True, text=True,
                            env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def _vars(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_env_file_contract_field_by_field(tmp_path: Path) -> None:
    env_file = tmp_path / "env.sh"
    env_file.write_text(render_env(BASE, settings(), claude_offered=True))
    got = _vars(_source(["bash", "-c"], env_file, tmp_path))
    assert got["OLLAMA_API_BASE"] == "http://192.168.100.10:11434"  # no /v1
    assert got["OPENAI_API_BASE"] == "http://192.168.100.10:11434/v1"
    assert got["OPENAI_API_KEY"] == "ollama"
    assert got["AIDER_MODEL"] == "ollama_chat/qwen2.5-coder:32b"
    assert got["PATH"] == f"{tmp_path}/home/.local/bin:/usr/bin:/bin"  # pipx's bin dir
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_MODEL"):
        assert name not in got  # only inside claude-ollama, never in the shell itself


def test_env_file_minimal_has_only_the_contract(tmp_path: Path) -> None:
    env_file = tmp_path / "env.sh"
    env_file.write_text(render_env(BASE, settings({}), claude_offered=True))
    got = _vars(_source(["bash", "-c"], env_file, tmp_path))
    assert {k: got[k] for k in ("OLLAMA_API_BASE", "OPENAI_API_BASE", "OPENAI_API_KEY")} == {
        "OLLAMA_API_BASE": BASE, "OPENAI_API_BASE": BASE + "/v1", "OPENAI_API_KEY": "ollama"}
    assert "AIDER_MODEL" not in got and got["PATH"] == "/usr/bin:/bin"
    assert "claude-ollama" not in env_file.read_text()


def test_claude_not_offered_means_no_function(tmp_path: Path) -> None:
    text = render_env(BASE, settings(), claude_offered=False)
    assert "claude-ollama" not in text and "ANTHROPIC" not in text


def _fake_claude(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    claude = bindir / "claude"
    claude.write_text("#!/bin/sh\necho \"args=$*\"\nenv\n")
    claude.chmod(0o755)
    return bindir


@pytest.mark.parametrize("shell", [["bash", "-c"], ["zsh", "-f", "-c"]])
def test_claude_ollama_function_field_by_field(tmp_path: Path, shell: list[str]) -> None:
    if shutil.which(shell[0]) is None:
        pytest.skip(f"{shell[0]} is not installed (.ci/run: apt-get install {shell[0]})")
    env_file = tmp_path / "env.sh"
    env_file.write_text(render_env(BASE, settings(), claude_offered=True))
    bindir = _fake_claude(tmp_path)
    out = _source(shell, env_file, tmp_path,
                  f"PATH={bindir}:$PATH; ANTHROPIC_API_KEY=sk-ant-real; claude-ollama -p hi")
    got = _vars(out)
    assert got["args"] == "-p hi"
    assert got["ANTHROPIC_BASE_URL"] == "http://192.168.100.10:11434"  # server root, no /v1
    assert got["ANTHROPIC_AUTH_TOKEN"] == "ollama"
    assert got["ANTHROPIC_API_KEY"] == ""  # a real key in the shell must not win
    assert got["ANTHROPIC_MODEL"] == "qwen3-coder:30b"
    assert got["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "qwen3-coder:30b"
    assert got["ANTHROPIC_DEFAULT_SONNET_MODEL"] == "qwen3-coder:30b"
    assert got["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "qwen2.5-coder:7b"
    assert got["ANTHROPIC_SMALL_FAST_MODEL"] == "qwen2.5-coder:7b"
    assert got["CLAUDE_CODE_SUBAGENT_MODEL"] == "qwen3-coder:30b"


def test_claude_ollama_replaces_the_original_alias(tmp_path: Path) -> None:
    """The original installer defined ``alias claude-ollama=...`` with a hard-coded IP; a
    function of the same name would not even parse while the alias exists."""
    env_file = tmp_path / "env.sh"
    env_file.write_text(render_env(BASE, settings(), claude_offered=True))
    bindir = _fake_claude(tmp_path)
    legacy = ("shopt -s expand_aliases; alias CLAUDE_OLLAMA_FLAGS='ANTHROPIC_BASE_URL="
              "http://192.168.250.20:11434 '; alias claude-ollama='CLAUDE_OLLAMA_FLAGS claude'")
    result = subprocess.run(
        ["bash", "-c", f"{legacy}\n. {env_file}\nPATH={bindir}:$PATH; claude-ollama"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert _vars(result.stdout)["ANTHROPIC_BASE_URL"] == BASE


def test_env_file_is_safe_in_a_posix_sh(tmp_path: Path) -> None:
    """~/.profile may be read by sh: the exports apply, the bash/zsh-only part is skipped."""
    env_file = tmp_path / "env.sh"
    env_file.write_text(render_env(BASE, settings(), claude_offered=True))
    shells = [["sh", "-c"], ["bash", "--posix", "-c"]]
    if shutil.which("busybox"):
        shells.append(["busybox", "sh", "-c"])
    for shell in shells:
        got = _vars(_source(shell, env_file, tmp_path))
        assert got["OPENAI_API_BASE"] == BASE + "/v1", shell


def test_aider_conf_field_by_field() -> None:
    conf = yaml.safe_load(render_aider_conf(BASE, settings(), "/Users/alice"))
    assert conf == {
        "model": "ollama_chat/qwen2.5-coder:32b",
        "set-env": ["OLLAMA_API_BASE=http://192.168.100.10:11434",
                    "LITELLM_LOCAL_MODEL_COST_MAP=True"],
        "model-settings-file": "/Users/alice/.aider.model.settings.yml",
        "model-metadata-file": "/Users/alice/.aider.model.metadata.json",
        "show-model-warnings": False,
        "check-update": False,
        "show-release-notes": False,
        "analytics-disable": True,
        "detect-urls": False,
    }


def test_aider_model_settings_pin_num_ctx() -> None:
    assert yaml.safe_load(render_model_settings(settings())) == [
        {"name": "ollama_chat/qwen2.5-coder:32b", "extra_params": {"num_ctx": DEFAULT_NUM_CTX}},
        {"name": "ollama_chat/qwen2.5-coder:7b", "extra_params": {"num_ctx": 8192}},
    ]


def test_daemon_plist_field_by_field() -> None:
    s = settings({"wg_interface_name": "home+vpn", "homebrew_prefix": "/usr/local"})
    plist = plistlib.loads(render_daemon_plist(s).encode())
    assert plist == {
        "Label": "org.self-sovereign-ollama.wireguard.home+vpn",
        "ProgramArguments": ["/usr/local/bin/bash", "/usr/local/bin/wg-quick", "up",
                             "/usr/local/etc/wireguard/home+vpn.conf"],
        "EnvironmentVariables": {
            "PATH": "/usr/local/bin:/usr/local/sbin:/usr/bin:/bin:/usr/sbin:/sbin",
            "WG_ENDPOINT_RESOLUTION_RETRIES": "infinity",
        },
        "RunAtLoad": True,
        "LaunchOnlyOnce": True,
        "AbandonProcessGroup": True,
        "StandardOutPath": "/var/log/org.self-sovereign-ollama.wireguard.home+vpn.log",
        "StandardErrorPath": "/var/log/org.self-sovereign-ollama.wireguard.home+vpn.log",
    }
    if shutil.which("plutil"):  # only on a Mac
        path = Path(os.environ.get("TMPDIR", "/tmp")) / "client-plist-test.plist"
        path.write_text(render_daemon_plist(s))
        assert subprocess.run(["plutil", "-lint", str(path)]).returncode == 0


@pytest.mark.parametrize(("existing", "targets"), [
    ([], [(".zshrc", True), (".bash_profile", True)]),
    ([".zshrc", ".bashrc"], [(".zshrc", True), (".bash_profile", True), (".bashrc", False)]),
    # bash reads only the first of these: never create ~/.bash_profile next to a ~/.profile
    ([".profile"], [(".zshrc", True), (".profile", True)]),
    ([".bash_login", ".profile"], [(".zshrc", True), (".bash_login", True)]),
    ([".bash_profile", ".profile"], [(".zshrc", True), (".bash_profile", True)]),
])
def test_profile_targets(existing: list[str], targets: list[tuple[str, bool]]) -> None:
    assert profile_targets(existing) == targets


def test_models_checked_against_the_servers_declaration() -> None:
    s = settings()  # aider: qwen2.5-coder:32b, qwen2.5-coder:7b; claude: qwen3-coder:30b, ...
    server = {"ollama_models": ["qwen2.5-coder:32b", {"name": "qwen2.5-coder:7b", "warm": True}]}
    assert undeclared_models(s, server) == ["qwen3-coder:30b"]
    assert undeclared_models(s, {"ollama_models": []}) == []  # nothing declared: no opinion
    assert undeclared_models(s, None) == []
    plain = settings({"aider": True, "aider_models": ["llama3.2"]})
    assert undeclared_models(plain, {"ollama_models": ["llama3.2:latest"]}) == []
