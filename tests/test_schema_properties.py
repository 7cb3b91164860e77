"""Property tests generated from the schema: bad values of every field are rejected cleanly
(one error naming the field, never an exception), valid values pass."""

from __future__ import annotations

import copy
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploys import schema
from deploys.plan import PlanError, validate

FIELDS = sorted(schema.ALL_FIELDS.values(), key=lambda f: f.name)
INTS = [f for f in FIELDS if f.kind == "int" and f.alt is None]
BOOLS = [f for f in FIELDS if f.kind == "bool"]
PATTERNS = [f for f in FIELDS if f.kind == "str" and f.pattern and f.alt is None]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)


def rejected(f: schema.Field, value: object) -> list[str]:
    errors: list[str] = []
    assert schema.check(f, value, "h", errors) is None
    assert errors and all(e.startswith(f"h: {f.name}") for e in errors), errors
    assert all("\n" not in e for e in errors)
    return errors


@SETTINGS
@given(st.sampled_from(INTS), st.data())
def test_ints_reject_other_types_and_out_of_range(f, data):
    bad = data.draw(
        st.booleans() | st.floats() | st.text(max_size=6)
        | st.integers(max_value=int(f.lo) - 1)
        | (st.integers(min_value=int(f.hi) + 1) if f.hi is not None else st.nothing())
    )
    rejected(f, bad)
    good = data.draw(st.integers(int(f.lo), int(f.hi if f.hi is not None else 10**9)))
    assert schema.check(f, good, "h", []) == good


@SETTINGS
@given(st.sampled_from(BOOLS), ANY)
def test_bools_accept_only_bools(f, value):
    if isinstance(value, bool):
        assert schema.check(f, value, "h", []) is value
    elif value is not None:
        rejected(f, value)


@SETTINGS
@given(st.sampled_from(PATTERNS), st.data())
def test_patterns_match_whole_values_without_control_characters(f, data):
    good = data.draw(st.from_regex(re.compile(f.pattern, re.ASCII), fullmatch=True)
                     .filter(lambda v: v == v.strip() and v.isprintable()
                             and (f.check is None or f.check(v) is None)))
    errors: list[str] = []
    assert schema.check(f, good, "h", errors) is not None, errors
    suffix = data.draw(st.sampled_from(["\n", "\x00", "\r", "\t", " ", "\u2028"]))
    rejected(f, good + suffix)
    rejected(f, data.draw(st.sampled_from([" ", "\n", "\x00"])) + good)
    rejected(f, data.draw(st.integers() | st.booleans() | st.lists(st.just(good), max_size=2)))


BASE = {
    "vpn_endpoint": "vpn.example.org",
    "vpn_peers": [{"name": "alice_phone"}],
}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FIELDS), ANY, st.sampled_from(["net", "srv", "cli"]))
def test_any_value_anywhere_is_accepted_or_cleanly_rejected(f, value, where):
    network, server, client = copy.deepcopy(BASE), {"dmz_address": "192.168.100.10"}, {}
    {"net": network, "srv": server, "cli": client}[where][f.name] = value
    try:
        validate(network=network, router=("router", {}), server=("ai-server", server),
                 clients=[("alice-mac", client)])
    except PlanError as exc:
        assert exc.errors and all("\n" not in e for e in exc.errors)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=5)
       .filter(lambda s: not s.isascii()))
def test_unicode_digits_are_never_a_port(text):
    f = schema.ALL_FIELDS["vpn_port"]
    rejected(f, text)
    try:
        schema.from_cli(f, text)
    except schema.CliError:
        pass
    else:
        raise AssertionError("converted Unicode digits")
