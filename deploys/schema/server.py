"""Fields of the Mac server (group ``server``): its DMZ identity and the server role."""

from __future__ import annotations

from typing import Any

from deploys.schema.base import REQUIRED, Field
from deploys.schema.network import HOSTNAME, MAC, mac_problem

S = ("server",)
MODEL_NAME = (
    r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9][A-Za-z0-9._-]*)?"
)
USER_NAME = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"
ENV_NAME = r"OLLAMA_[A-Z0-9_]+"
# Go durations (``24h``, ``1h30m``, ``90s``) or integer seconds; negative means forever.
DURATION = r"-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+|-?[0-9]+"
HAPROXY_TIME = r"[0-9]+(us|ms|s|m|h|d)?"
PMSET_KEY = r"[a-z][a-zA-Z]*"
SERVICE_NAME = r"[^\x00-\x1f*]{1,255}"
DEVICE = r"[a-z]+[0-9]+"
ABS_PATH = r"/[^\x00-\x1f]{0,1023}"
HOME_PATH = r"(/|~/)[^\x00-\x1f]{0,1022}"
MODEL_HINT = "not an Ollama model name like 'qwen2.5-coder:32b'"


def _dns_problem(addr: object) -> str | None:
    a: Any = addr
    if a.is_unspecified or a.is_multicast or str(a) == "255.255.255.255":
        return "not a DNS server's address"
    return None


def _path(name: str, doc: str, default: str | None, home_ok: bool) -> Field:
    where = "an absolute path" + (" or one under ~/" if home_ok else "")
    return Field(name, "str", doc, default, S, pattern=HOME_PATH if home_ok else ABS_PATH,
                 hint=f"expected {where}",
                 check=lambda v: f"expected {where}" if v.rstrip("/") in ("", "~") else None)


def _duration(name: str, doc: str, default: object) -> Field:
    return Field(name, "str", doc, default, S, pattern=DURATION,
                 hint="expected a duration like '24h', '30m', seconds, or -1 for forever",
                 alt=Field(name, "int", doc, lo=-1, hi=10**9))


MODEL = Field(
    "ollama_models[]", "record", "a model to have", hosts=("server",),
    fields=(
        Field("name", "str", "Ollama model name", REQUIRED, pattern=MODEL_NAME, hint=MODEL_HINT),
        Field("warm", "bool", "loaded at boot and after a deploy", False),
        Field("memory_gb", "number", "declared memory need (GB)", None, lo=0.1,
              hint="expected a positive number of GB"),
        Field("context_length", "int", "context length this model is used with", None,
              lo=2048, hi=1048576),
    ),
    unknown_why="unknown model field (name, warm, memory_gb, context_length)",
    hint="expected a model name or a dict with 'name'",
    alt=Field("ollama_models[]", "str", "a model name", pattern=MODEL_NAME, hint=MODEL_HINT,
              convert=lambda v: {"name": v}),
)

SERVER: tuple[Field, ...] = (
    Field("dmz_address", "ipv4", "its static address in the DMZ (the firewall rule's target)",
          REQUIRED, S),
    Field("dmz_mac", "str", "MAC of its Ethernet port: a static DHCP lease", None, S,
          pattern=MAC, hint="not a MAC address like 52:54:00:a1:00:10", check=mac_problem),
    Field("dmz_hostname", "str", "name of that lease", "ai-server", S, pattern=HOSTNAME,
          hint="not a host name"),
    Field("pin_ollama", "bool", "True: brew pin ollama; False: unpin; unset: leave", None,
          ("server", "clients"), cli="bool"),
    Field("ollama_service", "enum", "'agent' (LaunchAgent of ssh_user) or 'daemon' "
          "(LaunchDaemon, serves without login)", "agent", S, choices=("agent", "daemon")),
    Field("ollama_user", "str", "user Ollama runs as (daemon mode)", None, S,
          pattern=USER_NAME, hint="not a macOS account name", default_doc="ssh_user"),
    Field("ollama_bind", "enum", "'dmz' (the DMZ address) or 'all' (0.0.0.0)", "dmz", S,
          choices=("dmz", "all")),
    Field("ollama_origins", "list", "OLLAMA_ORIGINS", None, S, cli="csv",
          item=Field("ollama_origins", "str", "an origin", pattern=r"[^,\s]+",
                     hint="expected an origin like 'http://192.168.100.10:*'"),
          hint="expected a list of origins like ['http://192.168.100.10:*'] or one "
               "comma-separated string",
          alt=Field("ollama_origins", "str", "origins", pattern=r"[^,\s]+(,[^,\s]+)*",
                    hint="expected a list of origins like ['http://192.168.100.10:*'] or one "
                         "comma-separated string")),
    _duration("ollama_keep_alive", "OLLAMA_KEEP_ALIVE", None),
    Field("ollama_context_length", "int", "OLLAMA_CONTEXT_LENGTH", None, S, lo=256, hi=2**21,
          cli="int"),
    Field("ollama_num_parallel", "int", "OLLAMA_NUM_PARALLEL", None, S, lo=1, hi=64, cli="int"),
    Field("ollama_max_loaded_models", "int", "OLLAMA_MAX_LOADED_MODELS", None, S, lo=0, hi=64,
          cli="int"),
    Field("ollama_flash_attention", "bool", "OLLAMA_FLASH_ATTENTION", None, S, cli="bool"),
    Field("ollama_kv_cache_type", "enum", "OLLAMA_KV_CACHE_TYPE", None, S,
          choices=("f16", "q8_0", "q4_0"), hint="expected one of f16, q8_0, q4_0"),
    _path("ollama_models_dir", "OLLAMA_MODELS", None, home_ok=False),
    Field("ollama_env", "map", "other OLLAMA_* variables", {}, S, cli="json",
          key_pattern=ENV_NAME, hint="only OLLAMA_[A-Z0-9_]+ variables",
          item=Field("ollama_env[]", "str", "a value", free_text=False,
                     hint="expected a one-line string or number",
                     alt=Field("ollama_env[]", "int", "a value", lo=-(2**63), hi=2**63))),
    _path("ollama_stdout_log", "launchd StandardOutPath", "/tmp/ollama.stdout.log", False),
    _path("ollama_stderr_log", "launchd StandardErrorPath", "/tmp/ollama.stderr.log", False),
    Field("ollama_models", "list", "models to have: names, or dicts {'name', 'warm', "
          "'memory_gb', 'context_length'}", [], S, cli="csv", item=MODEL,
          hint="expected a list of model names or dicts"),
    Field("ollama_prune_models", "bool", "delete models that are not declared", False, S,
          cli="bool"),
    _duration("ollama_warm_keep_alive", "keep_alive of the warm-up request", -1),
    Field("ollama_warm_num_ctx", "int", "num_ctx of the warm-up (the clients')", None, S,
          lo=256, hi=2**21, cli="int", default_doc="ollama_context_length"),
    Field("ollama_pull_timeout", "int", "seconds a pull may take (0 = no limit)", 0, S,
          lo=0, hi=7 * 24 * 3600, cli="int"),
    Field("ollama_upgrade", "bool", "brew upgrade Ollama when outdated", False, S, cli="bool"),
    Field("ollama_memory_check", "enum", "declared models vs memory", "warn", S,
          choices=("fail", "warn", "off")),
    Field("competing_servers", "enum", "other Ollama servers (brew services, Ollama.app)",
          "stop", S, choices=("stop", "warn")),
    Field("proxy", "enum", "'haproxy': an endpoint allowlist in front of a loopback Ollama",
          None, S, choices=("haproxy",), hint="expected None or 'haproxy'"),
    _path("haproxy_config", "HAProxy's config file", "~/.haproxy/haproxy.cfg", home_ok=True),
    _path("haproxy_log", "HAProxy's launchd log", "/tmp/haproxy.log", home_ok=False),
    Field("haproxy_timeout", "str", "client/server inactivity timeout", "10m", S,
          pattern=HAPROXY_TIME, hint="expected an HAProxy time like '10m'"),
    Field("static_ip", "bool", "set the DMZ address with networksetup", True, S, cli="bool"),
    Field("network_service", "str", "network service to configure (by name)", None, S,
          pattern=SERVICE_NAME, hint="expected a network service name like 'Ethernet'"),
    Field("network_device", "str", "... or by device", None, S, pattern=DEVICE,
          hint="expected a device name like 'en0'", default_doc="en0"),
    Field("dns_servers", "list", "DNS servers of that service", None, S, cli="csv",
          item=Field("dns_servers", "ipv4", "a DNS server", check=_dns_problem),
          hint="expected a non-empty list of IPv4 addresses",
          check=lambda v: None if v else "expected a non-empty list of IPv4 addresses",
          default_doc="the router's DMZ address"),
    Field("static_ip_over_ssh", "bool", "allow changing the address of the SSH link", False, S,
          cli="bool"),
    Field("pmset", "map", "pmset settings ({} = leave alone)", None, S, cli="json",
          key_pattern=PMSET_KEY, hint="not a pmset setting name",
          item=Field("pmset[]", "int", "a setting", lo=0, hi=100000,
                     hint="expected a whole number (minutes or 0/1)"),
          default_doc="sleep 0, disksleep 0, autorestart 1, womp 1"),
    Field("uninstall_revert_dhcp", "bool", "deploys/uninstall.py reverts to DHCP", False, S,
          cli="bool"),
    Field("log_rotate", "record", "rotation of the Ollama/HAProxy logs", None, S, cli="json",
          fields=(Field("size_kb", "int", "rotate above this size (KB)", 10240, lo=100,
                        hi=10**7),
                  Field("count", "int", "rotated files kept", 5, lo=1, hi=100)),
          hint="expected a dict {'size_kb': 10240, 'count': 5}, or False (no rotation)",
          alt=Field("log_rotate", "bool", "False: no rotation (the newsyslog file is removed)",
                    check=lambda v: None if v is False else "True is the default: omit it"),
          default_doc="{'size_kb': 10240, 'count': 5}"),
    Field("warm_at_boot", "bool", "load the warm models when the Mac boots", True, S,
          cli="bool"),
    Field("warm_poll_seconds", "number", "how often the warm job asks Ollama what is loaded",
          10, S, lo=0.1, hi=3600, cli="number"),
    _path("warm_log", "the warm job's log", "/tmp/ollama.warm.log", False),
)

SERVER_FIELDS = {f.name: f for f in SERVER}
