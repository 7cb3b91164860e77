"""Real agents through the lab's tunnel, and the Ollama stand-in's tool-call rule they rely on.

**In CI** (no download): the stand-in calls a tool only when the conversation asks for one
(``tests/standins/ollama_api.py`` ``_asked_tool``): a text prompt with tools offered gets text,
a prompt naming a tool gets that tool called, a tool result gets text, and the reminders an
agent adds itself never count. So an agent's loop ends.

**Lab check** (opt-in: needs root for the lab and the real tools, which are downloads)::

    npm install --prefix /opt/agents @anthropic-ai/claude-code
    python3 -m venv /opt/aider && /opt/aider/bin/pip install aider-chat
    SSOL_AGENT_CLAUDE=/opt/agents/node_modules/.bin/claude \\
    SSOL_AGENT_AIDER=/opt/aider/bin/aider \\
        python3 -m pytest -m agents tests/test_agents_lab.py

It starts a lab, converges it with ``pyinfra inventories/lab.py deploys/all.py``, and runs
each tool in client1's network namespace (the tunnel the client role brought up) with only the
files the client role wrote on that Mac (``env.sh`` sourced, ``claude-ollama``; Aider's three
files; their ``/Users/alice`` paths pointed at a copy). An nftables table in the namespace
counts (and records the destination of) every packet that leaves by anything but loopback, the
tunnel or the tunnel's own UDP: it must stay at 0. The server's Ollama log (the stand-in runs
with ``--verbose`` in the lab) gives the requests per run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from tests.standins.ollama_api import OllamaStandIn

REPO = Path(__file__).resolve().parents[1]
CLAUDE = os.environ.get("SSOL_AGENT_CLAUDE")
AIDER = os.environ.get("SSOL_AGENT_AIDER")
MODEL = "llama3.2:1b"
BASH_TOOL = {"name": "Bash", "description": "Run a command",
             "input_schema": {"type": "object", "required": ["command"],
                              "properties": {"command": {"type": "string"}}}}
READ_TOOL = {"name": "Read", "description": "Read a file",
             "input_schema": {"type": "object", "required": ["file_path"],
                              "properties": {"file_path": {"type": "string"}}}}


# -- the stand-in's rule (CI) -----------------------------------------------------------------


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def standin():
    with OllamaStandIn("127.0.0.1", 0, models=[MODEL]) as server:
        yield server.url


def _messages(url: str, messages: list, tools: list | None = None) -> dict:
    return _post(url + "/v1/messages", {"model": MODEL, "max_tokens": 256, "messages": messages,
                                        "tools": tools or [BASH_TOOL, READ_TOOL]})


def test_text_prompt_gets_text_even_with_tools_offered(standin) -> None:
    reply = _messages(standin, [{"role": "user", "content": "Say hello in one short sentence."}])
    assert reply["stop_reason"] == "end_turn"
    assert [b["type"] for b in reply["content"]] == ["text"]


def test_reminders_an_agent_adds_do_not_ask_for_a_tool(standin) -> None:
    text = ("<system-reminder>consider using the Bash tool and the Read tool</system-reminder>"
            "Say hello.")
    reply = _messages(standin, [{"role": "user", "content": [{"type": "text", "text": text}]}])
    assert reply["stop_reason"] == "end_turn"


def test_a_named_tool_is_called_then_its_result_answered(standin) -> None:
    ask = {"role": "user", "content": "Use the Read tool on /etc/Hostname please."}
    first = _messages(standin, [ask])
    assert first["stop_reason"] == "tool_use"
    (call,) = [b for b in first["content"] if b["type"] == "tool_use"]
    assert call["name"] == "Read"  # the one named, not the first offered (Bash)
    follow = [ask, {"role": "assistant", "content": [call]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                            "content": "ai-server"}]}]
    second = _messages(standin, follow)
    assert second["stop_reason"] == "end_turn"
    assert "ai-server" in second["content"][-1]["text"]
    # the same conversation with a reminder after the result: still answered
    follow[-1]["content"].append({"type": "text",
                                  "text": "<system-reminder>use the Bash tool</system-reminder>"})
    assert _messages(standin, follow)["stop_reason"] == "end_turn"


def test_openai_route_follows_the_same_rule(standin) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    url = standin + "/v1/chat/completions"
    plain = _post(url, {"model": MODEL, "tools": tools,
                        "messages": [{"role": "user", "content": "Write a haiku."}]})
    assert plain["choices"][0]["finish_reason"] == "stop"
    asked = _post(url, {"model": MODEL, "tools": tools,
                        "messages": [{"role": "user", "content": "Weather in Oslo?"}]})
    assert asked["choices"][0]["finish_reason"] == "tool_calls"


# -- the lab check (opt-in) -------------------------------------------------------------------

LAB_PREFIX = f"ag{os.getpid() % 10000}-"
NFT_TABLE = "ssol_leaks"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not (CLAUDE or AIDER):
        pytest.skip("lab check: set SSOL_AGENT_CLAUDE and/or SSOL_AGENT_AIDER (see the module "
                    "docstring)")
    from tests.lab.lab import LabState, requirements_missing_lab, stop_supervisor

    missing = requirements_missing_lab()
    if missing:
        pytest.skip(f"the lab cannot run here: {missing}")
    directory = tmp_path_factory.mktemp("agents-lab")
    up = subprocess.run([sys.executable, "-m", "tests.lab", "up", "--dir", str(directory),
                         "--prefix", LAB_PREFIX, "--watch-pid", str(os.getpid())],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        state = LabState(directory)
        run = subprocess.run(
            [sys.executable, "-m", "pyinfra", "inventories/lab.py", "deploys/all.py", "-y"],
            cwd=REPO, capture_output=True, text=True, timeout=900, input="\n",
            env={**os.environ, "SSOL_LAB_DIR": str(directory), "PYTHONDONTWRITEBYTECODE": "1"})
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        yield state
    finally:
        stop_supervisor(directory, LAB_PREFIX)


class Client:
    """client1's network namespace, a HOME with the files the client role wrote on the Mac,
    and the leak counter."""

    def __init__(self, lab, home: Path) -> None:
        self.lab, self.home = lab, home
        mac_home = "/Users/alice"
        for rel in (".config/self-sovereign-ollama/env.sh", ".aider.conf.yml",
                    ".aider.model.settings.yml", ".aider.model.metadata.json"):
            target = home / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            text = lab.mac_file("client1", f"{mac_home}/{rel}").read_text()
            target.write_text(text.replace(mac_home + "/", f"{home}/"))
        self.dev = self._tunnel_device()
        addr = self.lab.topology.ip("client1", "-o", "-4", "addr", "show", "dev", self.dev)
        self.address = re.search(r"inet ([0-9.]+)", addr.stdout).group(1)
        self.endpoint = lab.data["addresses"]["router_wan"]

    def ns(self, *argv: str, env: dict | None = None, timeout: float = 300,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
        """A host program in client1's network namespace (only ``env`` as its environment)."""
        prefix = ["ip", "netns", "exec", self.lab.topology.ns("client1")]
        if env is not None:
            prefix += ["env", "-i", *(f"{k}={v}" for k, v in env.items())]
        return subprocess.run([*prefix, *argv], capture_output=True, text=True,
                              timeout=timeout, input=input)

    def _tunnel_device(self) -> str:
        links = self.lab.topology.ip("client1", "-o", "link", "show").stdout
        devs = re.findall(r"^\d+: (utun\d+)[:@]", links, flags=re.M)
        assert devs, links
        return devs[0]

    def watch(self) -> None:
        """Count every packet that leaves by anything but lo, the tunnel, the tunnel's UDP."""
        rules = f"""
table inet {NFT_TABLE} {{
    set leaks {{ type ipv4_addr . inet_proto . inet_service; flags dynamic; }}
    chain out {{
        type filter hook output priority 0; policy accept;
        oifname "lo" accept
        oifname "{self.dev}" accept
        ip daddr {self.endpoint} udp dport 51820 accept
        meta nfproto ipv4 update @leaks {{ ip daddr . meta l4proto . th dport }}
        counter name leaked
    }}
    counter leaked {{ }}
}}
"""
        self.ns("nft", "delete", "table", "inet", NFT_TABLE)
        result = self.ns("nft", "-f", "-", input=rules)
        assert result.returncode == 0, result.stderr

    def leaks(self) -> tuple[int, str]:
        out = self.ns("nft", "list", "table", "inet", NFT_TABLE).stdout
        packets = re.search(r"counter leaked \{\s*packets (\d+)", out)
        assert packets, out
        return int(packets.group(1)), out


def server_requests(lab, source: str) -> list[tuple[str, str]]:
    """``[(request, status)]`` the server's Ollama logged from ``source`` (the client's VPN
    address; the warm job's own polls come from the server itself)."""
    log = lab.mac_file("server", "/tmp/ollama.stderr.log")
    found = re.findall(r'^(\S+) - - \[[^]]*\] "((?:GET|POST|HEAD|DELETE) \S+) HTTP/1\.[01]" '
                       r'(\d+)', log.read_text(), flags=re.M) if log.exists() else []
    return [(request, status) for ip, request, status in found if ip == source]


@pytest.fixture(scope="module")
def client(lab, tmp_path_factory):
    c = Client(lab, tmp_path_factory.mktemp("alice-home"))
    c.watch()
    # the counter is not blind: a lookup of the vendor's host from the namespace is counted
    before, _ = c.leaks()
    c.ns("getent", "hosts", "api.anthropic.com", timeout=30)
    after, table = c.leaks()
    assert after > before and "53" in table, table
    return c


def _env(home: Path, tool_dir: str) -> dict[str, str]:
    return {"HOME": str(home), "PATH": f"{tool_dir}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8", "TERM": "dumb"}


@pytest.mark.agents
@pytest.mark.lab
def test_claude_code_completes_a_prompt_and_sends_nothing_else(lab, client, tmp_path) -> None:
    if not CLAUDE:
        pytest.skip("set SSOL_AGENT_CLAUDE")
    before = len(server_requests(lab, client.address))
    start, _ = client.leaks()
    env_sh = client.home / ".config/self-sovereign-ollama/env.sh"
    run = client.ns("bash", "-c", f'. "{env_sh}" && cd "{tmp_path}" && '
                    'claude-ollama -p "Say hello in one short sentence."',
                    env=_env(client.home, str(Path(CLAUDE).parent)), timeout=300)
    requests = server_requests(lab, client.address)[before:]
    leaked, table = client.leaks()
    report = (f"claude -p: rc={run.returncode} requests={len(requests)} "
              f"{dict(Counter(r for r, _ in requests))} leaked={leaked - start} "
              f"answer={run.stdout.strip()[:200]!r}")
    print(report)
    assert run.returncode == 0, report + run.stdout + run.stderr
    assert run.stdout.strip(), report
    assert requests and all(code == "200" for _, code in requests), report
    assert {r for r, _ in requests} <= {"POST /v1/messages", "POST /v1/messages?beta=true",
                                        "HEAD /", "GET /"}, report
    assert leaked - start == 0, report + table


@pytest.mark.agents
@pytest.mark.lab
def test_aider_completes_a_prompt_and_sends_nothing_else(lab, client, tmp_path) -> None:
    if not AIDER:
        pytest.skip("set SSOL_AGENT_AIDER")
    before = len(server_requests(lab, client.address))
    start, _ = client.leaks()
    env_sh = client.home / ".config/self-sovereign-ollama/env.sh"
    run = client.ns("bash", "-c", f'. "{env_sh}" && cd "{tmp_path}" && aider --yes-always '
                    '--no-git --no-pretty --no-stream --message "Say hello in one short '
                    'sentence."', env=_env(client.home, str(Path(AIDER).parent)), timeout=300)
    requests = server_requests(lab, client.address)[before:]
    leaked, table = client.leaks()
    report = (f"aider --message: rc={run.returncode} requests={len(requests)} "
              f"{dict(Counter(r for r, _ in requests))} leaked={leaked - start} "
              f"answer={run.stdout.strip()[-300:]!r}")
    print(report)
    assert run.returncode == 0, report + run.stdout + run.stderr
    assert requests and all(code == "200" for _, code in requests), report
    assert {r for r, _ in requests} <= {"POST /api/show", "POST /api/chat"}, report
    assert leaked - start == 0, report + table


@pytest.mark.agents
@pytest.mark.lab
def test_claude_code_tool_round_ends(lab, client, tmp_path) -> None:
    """A prompt naming a tool: the stand-in calls it, Claude Code runs it and sends the
    result, the stand-in answers in text, the agent stops (no loop)."""
    if not CLAUDE:
        pytest.skip("set SSOL_AGENT_CLAUDE")
    before = len(server_requests(lab, client.address))
    start, _ = client.leaks()
    env_sh = client.home / ".config/self-sovereign-ollama/env.sh"
    run = client.ns("bash", "-c", f'. "{env_sh}" && cd "{tmp_path}" && claude-ollama -p '
                    '"Use the Bash tool to run Echo." --allowedTools Bash',
                    env=_env(client.home, str(Path(CLAUDE).parent)), timeout=300)
    requests = server_requests(lab, client.address)[before:]
    leaked, table = client.leaks()
    messages = [r for r, _ in requests if r.startswith("POST /v1/messages")]
    report = (f"claude -p (tool): rc={run.returncode} {dict(Counter(r for r, _ in requests))} "
              f"leaked={leaked - start} answer={run.stdout.strip()[:200]!r}")
    print(report)
    assert run.returncode == 0, report + run.stderr
    assert len(messages) == 2, report  # the call, then the answer to its result
    assert "The tool returned:" in run.stdout, report
    assert leaked - start == 0, report + table
