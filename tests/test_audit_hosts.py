"""The server and client audits on recorded facts (tests/facts/ fixtures and hand-made client
reads): each kind of drift, and the JSON/table shape. The lab test (tests/test_audit_lab.py)
runs both against fake Macs over SSH."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from deploys.audit_client import audit_client_state
from deploys.audit_server import audit_server_state
from deploys.client_plan import (
    ENV_FILE,
    profile_body,
    render_aider_conf,
    render_daemon_plist,
    render_env,
    render_model_settings,
    server_base_url,
    validate_client,
)
from deploys.keys import KeyStore
from deploys.peers import peer_config
from deploys.plan import materialize, validate
from deploys.server_plan import validate_server
from facts.client import CONFIG_DIR
from facts.client_audit import ClientAudit, parse_audit

FACTS = Path(__file__).resolve().parent / "facts"
NETWORK = {
    "vpn_subnet": "10.10.10.0/24", "vpn_endpoint": "vpn.example.org", "vpn_port": 51820,
    "dmz_subnet": "192.168.100.0/24", "lan_subnet": "192.168.1.0/24", "dmz_device": "lan4",
}


@pytest.fixture
def plan(tmp_path):
    spec = validate(network=NETWORK, router=("router", {}),
                    server=("ai-server", {"dmz_address": "192.168.100.10"}),
                    clients=[("alice-mac", {"vpn_name": "alice_mac", "key_on_mac": False})])
    return materialize(spec, KeyStore(tmp_path / "secrets"))


def server_fact(name: str) -> dict:
    return json.loads((FACTS / "macserver.MacServerState" / f"{name}.json").read_text())["fact"]


def server_settings(**data):
    settings, errors = validate_server("ai-server", {
        "ssh_user": "admin", "dmz_address": "192.168.100.10", "ollama_port": 11434,
        "network_service": "Ethernet", **data})
    assert settings is not None, errors
    return settings


def by_item(audit, area: str) -> dict[str, tuple[str, str]]:
    return {f.item: (f.status, f.detail) for f in audit.findings if f.area == area}


def test_server_models_service_and_version(plan):
    settings = server_settings(ollama_models=[{"name": "llama3.2", "warm": True},
                                              "qwen3:8b"])
    audit = audit_server_state("ai-server", settings, plan, server_fact(
        "converged_agent_composed"))
    models = by_item(audit, "models")
    assert models["qwen3:8b"] == ("drift", "declared, not installed")
    assert models["llama3.2:latest"] == ("drift", "warm model not loaded")
    assert by_item(audit, "service")["com.ollama"] == ("ok", "running in user, pid 4242")
    # the fixture's plist hash is not the plist this plan renders
    assert by_item(audit, "service")["plist"][0] == "drift"
    assert by_item(audit, "bind")["ollama"] == ("ok", "listens on 192.168.100.10:11434")
    version = by_item(audit, "ollama")["version"]
    assert version[0] == "ok" and version[1].startswith("0.32.3; offers /api/version")
    assert audit.values["ollama_version"] == "0.32.3"


def test_server_extra_models_are_drift_only_when_pruning(plan):
    fact = server_fact("converged_agent_composed")
    keep = audit_server_state("ai-server", server_settings(ollama_models=[]), plan, fact)
    prune = audit_server_state("ai-server", server_settings(
        ollama_models=[], ollama_prune_models=True), plan, fact)
    assert by_item(keep, "models")["llama3.2:latest"][0] == "info"
    assert by_item(prune, "models")["llama3.2:latest"][0] == "drift"


def test_server_competitors_and_a_missing_job(plan):
    settings = server_settings(network_service=None, network_device="en0")
    audit = audit_server_state("ai-server", settings, plan, server_fact(
        "fresh_mac_brew_service_and_app_composed"))
    competing = [f for f in audit.findings if f.area == "competing"]
    assert competing and {f.status for f in competing} == {"drift"}
    assert {f.item for f in competing} >= {"brew-service", "app"}
    assert by_item(audit, "service")["com.ollama"] == (
        "drift", "not loaded in any launchd domain")
    assert audit.drift


# -- clients -----------------------------------------------------------------------------------


def _sha(text) -> str:
    text = text.reveal() if hasattr(text, "reveal") else text
    return hashlib.sha256(text.encode()).hexdigest()


def client_fact(plan, settings, home="/Users/alice", **changes) -> dict:
    """A ClientAudit value for a client converged to the plan, then ``changes`` applied."""
    peer = plan.peer("alice_mac")
    base = server_base_url(plan.server_address, plan.ollama_port)
    block = {"marker": "self-sovereign-ollama", "begin": 1, "end": 4, "body": profile_body()}
    fact = {
        "client": {
            "home": home, "user": "alice", "aider": "0.86.1", "claude_code": {},
            "dirs": {f"{home}/{CONFIG_DIR}": {"mode": "drwx------", "uid": "501"}},
            "files": {
                f"{home}/{ENV_FILE}": {"sha256": _sha(render_env(base, settings, True)),
                                       "managed": True},
                f"{home}/.aider.conf.yml": {"sha256": _sha(render_aider_conf(base, settings,
                                                                             home))},
                f"{home}/.aider.model.settings.yml": {"sha256": _sha(render_model_settings(
                    settings))},
            },
            "profiles": {".zshrc": {"blocks": [block], "unterminated": []},
                         ".bash_profile": {"blocks": [block], "unterminated": []}},
        },
        "tunnel": {
            "readable": True, "peer_public_keys": [plan.router_public_key],
            "files": {settings.wireguard_config: {"sha256": _sha(peer_config(plan, peer)),
                                                  "mode": "-rw-------", "uid": "0", "gid": "0"},
                      settings.daemon_plist: {"sha256": _sha(render_daemon_plist(settings)),
                                              "mode": "-rw-r--r--", "uid": "0", "gid": "0"}},
            "tunnel": {"device": "utun3", "socket": True},
            "daemon_loaded": False, "daemon_disabled": False,
        },
        "complete": True,
    }
    for path, value in changes.items():
        target = fact
        *keys, last = path.split("/")
        for k in keys:
            target = target[k]
        target[last] = value
    return fact


@pytest.fixture
def client_settings():
    settings, errors = validate_client("alice-mac", {
        "vpn_name": "alice_mac", "aider": True, "aider_models": ["qwen2.5-coder:32b"],
        "claude_code": True, "claude_models": "qwen2.5-coder:32b"}, 32768)
    assert settings is not None, errors
    return settings


def test_a_converged_client_has_no_drift(plan, client_settings):
    audit = audit_client_state("alice-mac", client_settings, plan,
                               client_fact(plan, client_settings))
    assert audit.drift == [], [(f.area, f.item, f.detail) for f in audit.findings]
    assert by_item(audit, "tunnel")[client_settings.wireguard_config][1].endswith(
        "peer key = the router's")


def test_client_tunnel_drift(plan, client_settings):
    conf = client_settings.wireguard_config
    fact = client_fact(plan, client_settings)
    fact["tunnel"]["files"][conf].update(mode="-rw-r--r--", sha256="0" * 64)
    fact["tunnel"]["peer_public_keys"] = ["x" * 43 + "="]
    detail = by_item(audit_client_state("alice-mac", client_settings, plan, fact),
                     "tunnel")[conf]
    assert detail[0] == "drift"
    assert "mode -rw-r--r--, plan -rw------- (600)" in detail[1]
    assert "content differs from the plan's config" in detail[1]
    assert f"is not the router's {plan.router_public_key}" in detail[1]
    fact = client_fact(plan, client_settings, **{"tunnel/readable": False})
    assert by_item(audit_client_state("alice-mac", client_settings, plan, fact),
                   "tunnel")[conf][0] == "drift"


def test_client_env_blocks_twice_or_missing(plan, client_settings):
    fact = client_fact(plan, client_settings)
    zsh = fact["client"]["profiles"][".zshrc"]
    zsh["blocks"] = zsh["blocks"] * 2
    fact["client"]["profiles"][".bash_profile"]["blocks"] = []
    env = by_item(audit_client_state("alice-mac", client_settings, plan, fact), "env")
    assert env["~/.zshrc"] == ("drift", "env block present 2 times")
    assert env["~/.bash_profile"] == ("drift", "env block missing")


def test_client_audit_fact_splits_user_and_root_sides():
    conf = "/opt/homebrew/etc/wireguard/wg-ollama.conf"
    cmd = ClientAudit().command(config=conf)
    assert "sudo -n /bin/sh -c" in cmd and "PrivateKey" not in cmd
    out = ["sys\tDarwin\t501\talice\t/Users/alice\t15.3", "##pyinfra-client-audit##tunnel",
           f"file\t{conf}\t{'a' * 64}\t-rw------- 0 0", "peerkey\tROUTERKEY=",
           "loaded\t1", "end", "##pyinfra-client-audit##end"]
    fact = parse_audit(out)
    assert fact["client"]["home"] == "/Users/alice" and fact["complete"] is True
    assert fact["tunnel"]["readable"] is True
    assert fact["tunnel"]["peer_public_keys"] == ["ROUTERKEY="]
    assert fact["tunnel"]["files"][conf]["mode"] == "-rw-------"
    failed = parse_audit(out[:2] + ["sudo-failed", "##pyinfra-client-audit##end"])
    assert failed["tunnel"]["readable"] is False


def test_server_environment_keys_against_the_plan(plan):
    fact = server_fact("converged_agent_composed")
    # the fixture's job predates "one context size per model" (OLLAMA_CONTEXT_LENGTH is now
    # always planned): the audit names exactly that variable as missing
    same = audit_server_state("ai-server", server_settings(ollama_keep_alive="24h"), plan, fact)
    assert by_item(same, "service")["environment"] == (
        "drift", "launchd runs it without OLLAMA_CONTEXT_LENGTH")
    more = audit_server_state("ai-server", server_settings(
        ollama_keep_alive="24h", ollama_context_length=8192), plan, fact)
    assert by_item(more, "service")["environment"] == (
        "drift", "launchd runs it without OLLAMA_CONTEXT_LENGTH")
    less = audit_server_state("ai-server", server_settings(), plan, fact)
    assert by_item(less, "service")["environment"] == (
        "drift", "launchd runs it without OLLAMA_CONTEXT_LENGTH; with unplanned OLLAMA_KEEP_ALIVE")


def test_server_audit_in_proxy_mode_knows_the_clients_api_tokens(tmp_path):
    """A converged HAProxy whose config asks a client for its API token is not drift: the audit
    renders the config with the tokens the controller keeps, reading them only (a client whose
    token does not exist yet gets none written: the audit says the config differs)."""
    from deploys.api_tokens import TokenStore, server_api_tokens
    from deploys.server_run import network_target, server_run
    from operations.launchd import plist_path
    from operations.macos import sha256_text

    secrets = tmp_path / "secrets"
    spec = validate(network=NETWORK, router=("router", {}),
                    server=("ai-server", {"dmz_address": "192.168.100.10", "proxy": "haproxy"}),
                    clients=[("alice-mac", {"vpn_name": "alice_mac", "key_on_mac": False,
                                            "api_token": True})])
    plan = materialize(spec, KeyStore(secrets))
    datas = [{"api_token": True}]
    assert server_api_tokens(plan, "haproxy", datas, dry=True)  # in memory: nothing written
    assert not (secrets / "api-tokens").exists()
    TokenStore(secrets, dry=False).token("alice-mac")  # the deploy made it
    tokens = server_api_tokens(plan, "haproxy", datas, dry=True)
    settings = server_settings(proxy="haproxy")
    fact = server_fact("converged_agent_composed")
    resolved = settings.resolve_user(fact.get("user"))
    run = server_run(resolved, network_target(resolved, plan), fact, api_tokens=tokens)
    assert "alice" in run.haproxy_config and tokens[0].sha256 in run.haproxy_config
    plist = plist_path("com.haproxy", resolved.service_mode, fact.get("home"))
    fact["files"] = {**fact["files"], run.haproxy_config_path: sha256_text(run.haproxy_config),
                     plist: sha256_text(run.haproxy_plist)}
    fact["launchd"]["com.haproxy"] = {"user": {
        "loaded": True, "state": "running", "pid": 4343, "path": plist}}
    audit = audit_server_state("ai-server", settings, plan, fact, api_tokens=tokens)
    assert by_item(audit, "service")["com.haproxy"][0] == "ok", by_item(audit, "service")
    without = audit_server_state("ai-server", settings, plan, fact)
    assert by_item(without, "service")["com.haproxy"][0] == "drift"
