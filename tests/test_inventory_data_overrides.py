"""``--data key=value`` overrides: converted only as the field says (pyinfra itself turns any
number-looking text into an int, Unicode digits included, and "true" into a bool)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploys import schema
from deploys.plan import convert_cli_data

# (field, text as typed, converted value)
GOOD = [
    ("vpn_port", "51821", 51821),
    ("ollama_port", "8080", 8080),
    ("lan_to_dmz", "True", True),
    ("lan_to_dmz", "false", False),
    ("pin_ollama", "none", None),
    ("dmz_dhcp_leasetime", "3600", "3600"),  # text, not the int pyinfra would make of it
    ("vpn_interface", "123", "123"),
    ("vpn_endpoint", "1.2.3.4", "1.2.3.4"),
    ("rotate_peers", "alice_phone,bob_mac", ["alice_phone", "bob_mac"]),
    ("rotate_peers", '["alice_phone"]', ["alice_phone"]),
    ("ollama_models", "llama3.2,qwen2.5-coder:32b", ["llama3.2", "qwen2.5-coder:32b"]),
    ("vpn_peers", '[{"name": "p1"}]', [{"name": "p1"}]),
    ("claude_models", "qwen3-coder:30b", "qwen3-coder:30b"),
    ("claude_models", '{"default": "q"}', {"default": "q"}),
    ("proxy", "haproxy", "haproxy"),
    ("proxy", "none", None),
    ("ollama_keep_alive", "-1", "-1"),
]

# (field, text, error line)
BAD = [
    ("vpn_port", "\u0665\u0661\u0668\u0662\u0660",
     "--data: vpn_port: '\u0665\u0661\u0668\u0662\u0660' (expected a whole number from 1 to "
     "65535)"),
    ("vpn_port", "0x1f", "--data: vpn_port: '0x1f' (expected a whole number from 1 to 65535)"),
    ("vpn_port", " 51820", "--data: vpn_port: ' 51820' (expected a whole number from 1 to 65535)"),
    ("vpn_port", "51_820", "--data: vpn_port: '51_820' (expected a whole number from 1 to 65535)"),
    ("ollama_port", "", "--data: ollama_port: '' (expected a whole number from 1 to 65535)"),
    ("lan_to_dmz", "yes", "--data: lan_to_dmz: 'yes' (expected true or false)"),
    ("lan_to_dmz", "1", "--data: lan_to_dmz: '1' (expected true or false)"),
    ("vpn_peers", "phone", "--data: vpn_peers: 'phone' (expected JSON (expected a list of peer "
     "dicts))"),
    ("pmset", "sleep=0", "--data: pmset: 'sleep=0' (expected JSON (not a pmset setting name))"),
    ("rotate_peers", "[alice", "--data: rotate_peers: '[alice' (expected a JSON list or "
     "comma-separated words (expected a list of peer names))"),
]


def run(key: str, text: str, parsed: object = "pyinfra's guess"):
    inventory = SimpleNamespace(override_data={key: parsed})
    errors = convert_cli_data(inventory, ["pyinfra", "--data", f"{key}={text}", "inv.py", "x"])
    return inventory.override_data, errors


@pytest.mark.parametrize("key,text,value", GOOD, ids=[f"{k}={t}" for k, t, _ in GOOD])
def test_data_values_are_converted_as_the_field_says(key, text, value):
    override, errors = run(key, text)
    assert errors == [] and override[key] == value


@pytest.mark.parametrize("key,text,line", BAD, ids=[f"{k}={t!r}" for k, t, _ in BAD])
def test_bad_data_values_are_reported(key, text, line):
    override, errors = run(key, text)
    assert errors == [line]
    assert key not in override  # never used


def test_data_equals_form_and_unrelated_keys():
    inventory = SimpleNamespace(override_data={"vpn_port": 1, "ssh_user": "x"})
    errors = convert_cli_data(inventory, ["pyinfra", "--data=vpn_port=51820", "--data",
                                          "ssh_user=7"])
    assert errors == [] and inventory.override_data == {"vpn_port": 51820, "ssh_user": "x"}


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(sorted(schema.ALL_FIELDS)), st.text(max_size=12))
def test_any_text_for_any_field_converts_or_is_reported(key, text):
    override, errors = run(key, text)
    assert (errors == [] and key in override) or (len(errors) == 1 and key not in override)
    assert all("\n" not in e for e in errors)
