"""Server settings (deploys/server_plan.py): valid data, a catalogue of bad data with the exact
error (the plan's format ``<host>: <field>: <value> (<why>)``), memory checks, and the
preflight/decisions of a run computed from MacServerState fixtures (no host contacted)."""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys.server_plan import (
    DEFAULT_PMSET,
    estimate_model_gb,
    memory_problems,
    network_target,
    normalize_model,
    server_run,
    state_fact_args,
    validate_server,
)
from operations.macos import sha256_text

FIXTURES = Path(__file__).parent / "facts" / "macserver.MacServerState"
BASE = {"ssh_user": "admin", "dmz_address": "192.168.100.10", "ollama_port": 11434}
PLAN = SimpleNamespace(
    server_address=ipaddress.ip_address("192.168.100.10"),
    dmz_subnet=ipaddress.ip_network("192.168.100.0/24"),
    dmz_router_address=ipaddress.ip_address("192.168.100.1"),
)


def settings(**data):
    result, errors = validate_server("ai-server", {**BASE, **data})
    assert errors == [], errors
    return result


def state(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())["fact"]


# -- valid data -------------------------------------------------------------------------------


def test_defaults():
    s = settings()
    assert s.service_mode == "agent" and s.ollama_user == "admin"
    assert s.ollama_host == "192.168.100.10:11434"
    # one context size for every request (deploys/contexts.py): 32768 unless declared
    assert s.environment() == {"OLLAMA_HOST": "192.168.100.10:11434",
                               "OLLAMA_CONTEXT_LENGTH": "32768"}
    assert s.stdout_log == "/tmp/ollama.stdout.log" and s.stderr_log == "/tmp/ollama.stderr.log"
    assert s.pmset == DEFAULT_PMSET
    assert s.static_ip and s.network_device == "en0" and s.network_service is None
    assert s.proxy is None and s.models == () and not s.prune_models
    assert s.api_address == "192.168.100.10:11434"


def test_all_ollama_settings_reach_the_environment():
    s = settings(
        ollama_origins=["http://192.168.100.10:*", "app://*"],
        ollama_keep_alive="24h",
        ollama_context_length=32768,
        ollama_num_parallel=2,
        ollama_max_loaded_models=1,
        ollama_flash_attention=True,
        ollama_kv_cache_type="q8_0",
        ollama_models_dir="/Volumes/Models/ollama",
        ollama_env={"OLLAMA_LOAD_TIMEOUT": "10m", "OLLAMA_NOPRUNE": 1},
    )
    assert s.environment() == {
        "OLLAMA_HOST": "192.168.100.10:11434",
        "OLLAMA_ORIGINS": "http://192.168.100.10:*,app://*",
        "OLLAMA_KEEP_ALIVE": "24h",
        "OLLAMA_CONTEXT_LENGTH": "32768",
        "OLLAMA_NUM_PARALLEL": "2",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_MODELS": "/Volumes/Models/ollama",
        "OLLAMA_LOAD_TIMEOUT": "10m",
        "OLLAMA_NOPRUNE": "1",
    }
    assert s.warm_num_ctx == 32768  # the warm-up uses the clients' context by default


@pytest.mark.parametrize(
    "data, host, api",
    [
        ({}, "192.168.100.10:11434", "192.168.100.10:11434"),
        ({"ollama_bind": "all"}, "0.0.0.0:11434", "127.0.0.1:11434"),
        ({"proxy": "haproxy"}, "127.0.0.1:11434", "127.0.0.1:11434"),
        ({"ollama_port": 8080}, "192.168.100.10:8080", "192.168.100.10:8080"),
    ],
)
def test_ollama_host_always_has_the_port(data, host, api):
    s = settings(**data)
    assert s.ollama_host == host and s.api_address == api
    assert s.public_address == f"192.168.100.10:{data.get('ollama_port', 11434)}"


def test_models_normalised_and_warm_flags():
    s = settings(
        ollama_models=["llama3.2", {"name": "qwen2.5-coder:32b", "warm": True, "memory_gb": 24}],
        ollama_warm_keep_alive="2h",
    )
    assert [m.name for m in s.models] == ["llama3.2:latest", "qwen2.5-coder:32b"]
    assert [m.name for m in s.warm_models] == ["qwen2.5-coder:32b"]
    assert s.warm_keep_alive == "2h"
    assert normalize_model("hf.co/bartowski/Qwen2.5-7B-GGUF") == (
        "hf.co/bartowski/Qwen2.5-7B-GGUF:latest"
    )
    assert normalize_model("hf.co/bartowski/Qwen2.5-7B-GGUF:Q4_K_M").endswith(":Q4_K_M")


def test_daemon_mode_runs_as_another_user():
    s = settings(ollama_service="daemon", ollama_user="ollama")
    assert s.runs_as == "ollama" and s.service_mode == "daemon"


def test_ssh_user_may_come_from_the_login():
    s, errors = validate_server("ai-server", {"dmz_address": "192.168.100.10"})
    assert errors == [] and s.ssh_user is None and s.ollama_user is None
    resolved = s.resolve_user("admin")
    assert resolved.ssh_user == "admin" and resolved.runs_as == "admin"


def test_a_host_not_configured_may_log_in_as_root():
    # deploys/all.py leaves hosts with configure_host = False alone (e.g. a lab's server)
    s, errors = validate_server("ai-server", {**BASE, "ssh_user": "root", "configure_host": False})
    assert errors == []


def test_pmset_empty_means_leave_power_alone():
    assert settings(pmset={}).pmset == {}
    assert settings(pmset=None).pmset == {}


# -- the catalogue of bad data ----------------------------------------------------------------

BAD = [
    (
        {"ssh_user": None, "ollama_service": "daemon"},
        "ai-server: ollama_user: None (required for ollama_service = 'daemon' when ssh_user is "
        "not set: the account Ollama runs as)",
    ),
    (
        {"ssh_user": "root"},
        "ai-server: ssh_user: 'root' (Homebrew refuses to run as root: log in as an admin user)",
    ),
    (
        {"_sudo": True},
        "ai-server: _sudo: True (do not set _sudo for the server: the role uses sudo "
        "only for pmset, networksetup and LaunchDaemons, and Homebrew refuses to run as root)",
    ),
    (
        {"ollama_service": "launchagent"},
        "ai-server: ollama_service: 'launchagent' (expected one of 'agent', 'daemon')",
    ),
    (
        {"ollama_user": "ollama"},
        "ai-server: ollama_user: 'ollama' (a LaunchAgent runs as the SSH "
        "user 'admin'; use ollama_service = 'daemon' to run Ollama as another user)",
    ),
    (
        {"ollama_service": "daemon", "ollama_user": "root"},
        "ai-server: ollama_user: 'root' (Ollama must not run as root)",
    ),
    ({"ollama_bind": "lan"}, "ai-server: ollama_bind: 'lan' (expected one of 'dmz', 'all')"),
    (
        {"proxy": "haproxy", "ollama_bind": "all"},
        "ai-server: ollama_bind: 'all' (with proxy = "
        "'haproxy' Ollama listens on 127.0.0.1 and HAProxy on the DMZ address; remove ollama_bind)",
    ),
    ({"proxy": "nginx"}, "ai-server: proxy: 'nginx' (expected None or 'haproxy')"),
    (
        {"ollama_keep_alive": "one day"},
        "ai-server: ollama_keep_alive: 'one day' (expected a "
        "duration like '24h', '30m', seconds, or -1 for forever)",
    ),
    (
        {"ollama_context_length": 100},
        "ai-server: ollama_context_length: 100 (out of range 256-2097152)",
    ),
    (
        {"ollama_num_parallel": "4"},
        "ai-server: ollama_num_parallel: '4' (expected a whole number from 1 to 64)",
    ),
    (
        {"ollama_flash_attention": "yes"},
        "ai-server: ollama_flash_attention: 'yes' (expected True or False)",
    ),
    (
        {"ollama_kv_cache_type": "q4"},
        "ai-server: ollama_kv_cache_type: 'q4' (expected one of f16, q8_0, q4_0)",
    ),
    (
        {"ollama_models_dir": "models"},
        "ai-server: ollama_models_dir: 'models' (expected an absolute path)",
    ),
    (
        {"ollama_origins": "a,,b"},
        "ai-server: ollama_origins: 'a,,b' (expected a list of origins "
        "like ['http://192.168.100.10:*'] or one comma-separated string)",
    ),
    (
        {"ollama_env": {"OLLAMA_HOST": "0.0.0.0"}},
        "ai-server: ollama_env['OLLAMA_HOST']: '0.0.0.0' (set it with ollama_bind)",
    ),
    (
        {"ollama_env": {"PATH": "/bin"}},
        "ai-server: ollama_env['PATH']: '/bin' (only OLLAMA_[A-Z0-9_]+ variables)",
    ),
    (
        {"ollama_env": {"OLLAMA_DEBUG": "1\n2"}},
        "ai-server: ollama_env['OLLAMA_DEBUG']: '1\\n2' (expected a one-line string or number)",
    ),
    (
        {"ollama_stdout_log": "~/ollama.log"},
        "ai-server: ollama_stdout_log: '~/ollama.log' (expected an absolute path)",
    ),
    (
        {"ollama_models": "llama3.2"},
        "ai-server: ollama_models: 'llama3.2' (expected a list of model names or dicts)",
    ),
    (
        {"ollama_models": ["llama 3"]},
        "ai-server: ollama_models[0]: 'llama 3' (not an Ollama model "
        "name like 'qwen2.5-coder:32b')",
    ),
    (
        {"ollama_models": ["llama3.2", "llama3.2:latest"]},
        "ai-server: ollama_models[1]: 'llama3.2:latest' (declared twice)",
    ),
    (
        {"ollama_models": [{"name": "llama3.2", "pin": True}]},
        "ai-server: ollama_models[0].pin: True "
        "(unknown model field (name, warm, memory_gb, context_length))",
    ),
    (
        {"ollama_models": [{"name": "llama3.2", "memory_gb": 0}]},
        "ai-server: ollama_models[0].memory_gb: 0 (expected a positive number of GB)",
    ),
    ({"ollama_model": ["llama3.2"]}, "ai-server: ollama_model: ['llama3.2'] (unknown field)"),
    ({"haproxy_timout": "1h"}, "ai-server: haproxy_timout: '1h' (unknown field)"),
    (
        {"ollama_memory_check": "strict"},
        "ai-server: ollama_memory_check: 'strict' (expected one of 'fail', 'warn', 'off')",
    ),
    (
        {"competing_servers": "kill"},
        "ai-server: competing_servers: 'kill' (expected one of 'stop', 'warn')",
    ),
    (
        {"haproxy_timeout": "ten minutes"},
        "ai-server: haproxy_timeout: 'ten minutes' (expected an HAProxy time like '10m')",
    ),
    (
        {"haproxy_config": "haproxy.cfg"},
        "ai-server: haproxy_config: 'haproxy.cfg' (expected an absolute path or one under ~/)",
    ),
    (
        {"network_device": "Ethernet"},
        "ai-server: network_device: 'Ethernet' (expected a device name like 'en0')",
    ),
    (
        {"network_service": "*Ethernet"},
        "ai-server: network_service: '*Ethernet' (expected a network service name like 'Ethernet')",
    ),
    (
        {"dns_servers": ["1.1.1.1", "dns.google"]},
        "ai-server: dns_servers[1]: 'dns.google' (not an IPv4 address)",
    ),
    (
        {"dns_servers": []},
        "ai-server: dns_servers: [] (expected a non-empty list of IPv4 addresses)",
    ),
    (
        {"pmset": {"sleep": "never"}},
        "ai-server: pmset['sleep']: 'never' (expected a whole number (minutes or 0/1))",
    ),
    (
        {"pmset": {"Sleep On Power Button": 0}},
        "ai-server: pmset['Sleep On Power Button']: 0 (not a pmset setting name)",
    ),
    (
        {"static_ip_over_ssh": "yes"},
        "ai-server: static_ip_over_ssh: 'yes' (expected True or False)",
    ),
    ({"ollama_pull_timeout": -1}, "ai-server: ollama_pull_timeout: -1 (out of range 0-604800)"),
]


@pytest.mark.parametrize("data, error", BAD, ids=[e.split(": ")[1] for _, e in BAD])
def test_bad_data_is_reported_exactly(data, error):
    merged = {**BASE, **data}
    merged = {k: v for k, v in merged.items() if v is not None or k == "ssh_user"}
    if merged.get("ssh_user") is None:
        merged.pop("ssh_user")
    result, errors = validate_server("ai-server", merged)
    assert result is None
    assert errors == [error]


def test_every_error_at_once():
    _, errors = validate_server(
        "ai-server", {**BASE, "ollama_service": "x", "proxy": "y", "ollama_num_parallel": 0}
    )
    assert len(errors) == 3


# -- memory -----------------------------------------------------------------------------------


def test_estimates_from_the_tag():
    assert estimate_model_gb("qwen2.5-coder:32b") == pytest.approx(21.6, abs=0.1)
    assert estimate_model_gb("llama3.1:70b-instruct-q8_0") == pytest.approx(82.9, abs=0.1)
    assert estimate_model_gb("qwen2.5:0.5b") == pytest.approx(0.8, abs=0.1)
    assert estimate_model_gb("llama3.2") is None  # no size in the tag: not guessed


def test_memory_problems_single_and_warm_together():
    gib = 2**30
    s = settings(
        ollama_models=[
            {"name": "llama3.1:70b", "warm": True},
            {"name": "qwen2.5-coder:32b", "warm": True},
            "llama3.2",
        ]
    )
    assert memory_problems(s, 128 * gib, {}) == []
    assert memory_problems(s, 64 * gib, {}) == [
        "ai-server: ollama_models: ['llama3.1:70b', 'qwen2.5-coder:32b'] (the warm models need "
        "about 69 GB together; about 52 GB usable by the GPU)"
    ]
    small = settings(ollama_models=[{"name": "qwen2.5-coder:32b", "memory_gb": 30}])
    assert memory_problems(small, 32 * gib, {}) == [
        "ai-server: ollama_models: 'qwen2.5-coder:32b' (needs about 30 GB; this Mac has 32 GB, "
        "about 26 GB usable by the GPU)"
    ]
    # an installed model's real size wins over the estimate
    installed = {"qwen2.5-coder:32b": 19 * 10**9}
    assert memory_problems(settings(ollama_models=["qwen2.5-coder:32b"]), 32 * gib, installed) == []
    off = settings(ollama_memory_check="off", ollama_models=["llama3.1:405b"])
    assert memory_problems(off, 8 * gib, {}) == []


# -- a run decided from the state -------------------------------------------------------------


def test_fact_arguments():
    args = state_fact_args(settings(proxy="haproxy", ollama_service="daemon", ollama_user="ollama"))
    assert args["api"] == "127.0.0.1:11434" and args["proxy_api"] == "192.168.100.10:11434"
    assert args["run_user"] == "ollama" and args["network_device"] == "en0"
    assert "~/Library/LaunchAgents/com.ollama.plist" in args["files"]
    assert "/Library/LaunchDaemons/com.haproxy.plist" in args["files"]
    assert "~/.haproxy/haproxy.cfg" in args["files"] and "/tmp/haproxy.log" in args["files"]


def test_fresh_mac_over_its_dhcp_link_is_refused_before_anything_changes():
    s = settings()
    run = server_run(s, network_target(s, PLAN), state("fresh_mac_brew_service_and_app_composed"))
    assert run.errors == [
        "ai-server: static_ip_over_ssh: False (this SSH session runs over Ethernet (192.168.5.4); "
        "giving it 192.168.100.10 would cut it: connect over another link, give the Mac that "
        "address by DHCP first, or set static_ip_over_ssh = True for a detached change with "
        "automatic rollback)"
    ]
    allowed = settings(static_ip_over_ssh=True)
    run = server_run(
        allowed, network_target(allowed, PLAN), state("fresh_mac_brew_service_and_app_composed")
    )
    assert run.errors == []
    assert run.brew == {"install": ["ollama"], "upgrade": []}
    assert [c["kind"] for c in run.competitors] == ["brew-service", "brew-plist", "app"]
    assert run.network_changes and run.pmset_changes and run.ollama_changes
    assert run.refresh_models  # Ollama did not answer: decide about models when it runs
    assert any("starts only once admin logs in" in w for w in run.warnings)


def test_converged_mac_changes_nothing():
    s = settings(
        ollama_keep_alive="24h",
        pmset={"sleep": 0},
        dns_servers=["192.168.100.1"],
        ollama_models=["llama3.2"],
    )
    st = state("converged_agent_composed")
    st["files"]["/Users/admin/Library/LaunchAgents/com.ollama.plist"] = sha256_text(
        server_run(s, network_target(s, PLAN), st).ollama_plist
    )
    run = server_run(s, network_target(s, PLAN), st)
    assert run.errors == []
    assert not (run.ollama_changes or run.network_changes or run.pmset_changes)
    assert run.brew == {"install": [], "upgrade": []} and run.competitors == []
    assert not run.changes_service and not run.refresh_models
    assert run.sudo_reasons == []  # sudo needs a password here, but nothing needs sudo


def test_preflight_errors():
    s = settings(pmset={"sleep": 1})
    st = state("converged_agent_composed")
    bad = copy.deepcopy(st)
    bad["macos"].update({"version": "13.6.1", "apple_silicon": False, "arch": "x86_64"})
    bad["brew"] = {"prefix": None, "formulas": {}}
    errors = server_run(s, network_target(s, PLAN), bad).errors
    assert errors[:3] == [
        "ai-server: macos: '13.6.1' (Ollama needs macOS 14 Sonoma or newer)",
        "ai-server: arch: 'x86_64' (an Apple silicon Mac (arm64) is required)",
        "ai-server: homebrew: None (not installed: install Homebrew (https://brew.sh) as admin, "
        "then run again)",
    ]
    # pmset would change, sudo needs a password, none given
    assert errors[-1].startswith(
        "ai-server: _sudo_password: None (sudo needs a password for: pmset sleep 1"
    )
    assert server_run(s, network_target(s, PLAN), st, sudo_password=True).errors == []
    not_mac = {"complete": True, "macos": {}}
    assert server_run(s, network_target(s, PLAN), not_mac).errors == [
        "ai-server: macos: None (sw_vers found no macOS: not a Mac?)"
    ]
    assert server_run(s, network_target(s, PLAN), {}).errors == [
        "ai-server: state: None (could not read the Mac's state over SSH)"
    ]


def test_memory_check_fail_blocks_the_run():
    st = state("converged_agent_composed")  # 64 GB
    s = settings(ollama_models=["llama3.1:405b"], ollama_memory_check="fail", pmset={})
    errors = server_run(s, network_target(s, PLAN), st, sudo_password=True).errors
    assert errors == [
        "ai-server: ollama_models: 'llama3.1:405b' (needs about 268 GB; this Mac has 64 GB, "
        "about 52 GB usable by the GPU)"
    ]
    warn = settings(ollama_models=["llama3.1:405b"], pmset={})
    run = server_run(warn, network_target(warn, PLAN), st, sudo_password=True)
    assert run.errors == [] and any("llama3.1:405b" in w for w in run.warnings)


def test_stale_binary_restarts_ollama():
    s = settings(pmset={})
    st = state("converged_agent_composed")
    st["brew"]["formulas"]["ollama"]["version"] = "0.33.0_1"  # upgraded behind our back
    run = server_run(s, network_target(s, PLAN), st)
    assert run.restart_ollama and run.ollama_changes
    assert any("0.32.3 is running but 0.33.0 is installed" in w for w in run.warnings)


def test_restart_marker_of_an_interrupted_run_restarts_the_job():
    """Files already the desired ones, but a run was killed before the restart: its marker."""
    s = settings(pmset={})
    st = state("converged_agent_composed")
    assert not server_run(s, network_target(s, PLAN), st).restart_ollama
    marker = f"{st['home']}/.pyinfra-restart-com.ollama"
    st["files"][marker] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    run = server_run(s, network_target(s, PLAN), st)
    assert run.restart_ollama and run.ollama_changes
    assert "~/.pyinfra-restart-com.ollama" in state_fact_args(s)["files"]


def test_wrong_network_service_is_a_preflight_error():
    s = settings(network_service="USB 10/100/1000 LAN", pmset={})
    st = state("converged_agent_composed")
    st["network_service"], st["network"], st["dns"] = None, None, None
    assert server_run(s, network_target(s, PLAN), st).errors == [
        "ai-server: network_service: 'USB 10/100/1000 LAN' (no such network service on the Mac; "
        "it has: Ethernet (en0), Thunderbolt Bridge (bridge0), Wi-Fi (en1))"
    ]
