"""API acceptance suite: check the server's Ollama API as its clients use it.

Two ways to run it (the checks are in ``deploys/verify_checks.py``)::

    # against the server of the plan (every host of group `server`); read-only
    pyinfra inventories/home.py deploys/verify.py [--data verify_json=out.json]
            [--data verify_junit=out.xml]

    # against any base URL
    python3 -m deploys.verify http://192.168.100.10:11434 [--json out.json]
            [--junit out.xml] [--proxy] [--proxy-allow PATH] [--model NAME]
            [--isolate lan=192.168.1.1:22 --isolate internet=1.1.1.1:443 ...]

The pyinfra run takes the model (the first warm model, else the first declared one) and proxy
mode (``proxy = "haproxy"``) from the server's data, and the endpoints HAProxy forwards for the
clients' tools (``deploys/client_tools.py``, e.g. ``/api/chat`` for Aider); when this
controller's route to the server leaves from the VPN it also checks isolation (the router's
LAN, VPN and DMZ addresses, another VPN address, an internet address). Both print one line per
check and a summary, and fail (exit 1, or the host fails) when a check fails; skipped checks
say why. Bad arguments: exit 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from deploys.verify_checks import ISOLATION_LABELS, Result, run_suite
from deploys.verify_report import dump_json, line, summary, to_json, to_junit


def _isolate_arg(text: str) -> tuple[str, str, int]:
    label, sep, target = text.partition("=")
    host, colon, port = target.rpartition(":")
    if not sep or label not in ISOLATION_LABELS or not colon or not port.isdigit() \
            or not 0 < int(port) < 65536 or not host:
        raise argparse.ArgumentTypeError(
            f"--isolate {text!r}: expected LABEL=HOST:PORT with LABEL one of "
            f"{', '.join(ISOLATION_LABELS)}")
    return label, host.strip("[]"), int(port)


def _base_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.path.rstrip("/") not in ("",):
        raise argparse.ArgumentTypeError(
            f"base URL {text!r}: expected http://HOST:PORT (no path, no /v1)")
    try:
        parts.port  # noqa: B018 (validates the port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"base URL {text!r}: bad port") from None
    return text.rstrip("/")


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


def report(base_url: str, results: list[Result], version: str | None, model: str | None,
           json_path: str | None = None, junit_path: str | None = None) -> str:
    """Write the JSON/JUnit files asked for; return the summary line."""
    if json_path:
        _write(json_path, dump_json(to_json(base_url, version, model, results)))
    if junit_path:
        _write(junit_path, to_junit(base_url, results))
    return summary(base_url, version, results)


def _version(results: list[Result]) -> str | None:
    for r in results:
        for ex in r.exchanges:
            if ex.path == "/api/version" and ex.status == 200:
                try:
                    return json.loads(ex.body).get("version")
                except (ValueError, AttributeError):
                    return None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m deploys.verify",
        description="Acceptance checks of an Ollama server's API (native, OpenAI- and "
                    "Anthropic-compatible, proxy allowlist, VPN isolation).")
    parser.add_argument("base_url", type=_base_url, help="e.g. http://192.168.100.10:11434")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--junit", metavar="FILE", help="write the results as JUnit XML")
    parser.add_argument("--proxy", action="store_true",
                        help="the server is behind the HAProxy allowlist: check the 403s")
    parser.add_argument("--proxy-allow", action="append", default=[], metavar="PATH",
                        help="an endpoint the proxy forwards for a client's tool (e.g. "
                             "/api/chat for Aider): not expected to answer 403 (repeatable)")
    parser.add_argument("--model", help="model to use (default: the first one listed)")
    parser.add_argument("--isolate", action="append", type=_isolate_arg, default=[],
                        metavar="LABEL=HOST:PORT",
                        help=f"must NOT be reachable from here; LABEL: "
                             f"{', '.join(ISOLATION_LABELS)} (repeatable)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per request (a model may take long to load)")
    parser.add_argument("--only", action="append", metavar="ID|GROUP",
                        help="run only these checks or groups (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout {args.timeout}: expected a positive number of seconds")
    for path in (args.json, args.junit):
        if path and not Path(path).resolve().parent.is_dir():
            parser.error(f"{path}: its directory does not exist")

    def progress(result: Result) -> None:
        if not args.quiet:
            print(line(result), flush=True)

    results = run_suite(args.base_url, model=args.model, proxy=args.proxy, isolate=args.isolate,
                        timeout=args.timeout, only=args.only, progress=progress,
                        proxy_allows=args.proxy_allow)
    if not results:
        print(f"no check matches --only {args.only}", file=sys.stderr)
        return 2
    print(report(args.base_url, results, _version(results), args.model or _model(results),
                 args.json, args.junit))
    return 1 if any(r.status == "failed" for r in results) else 0


def _model(results: list[Result]) -> str | None:
    for r in results:
        for ex in r.exchanges:
            if isinstance(ex.request, dict) and isinstance(ex.request.get("model"), str) \
                    and not ex.request["model"].startswith("nonexistent"):
                return ex.request["model"]
    return None


# -- the pyinfra deploy --------------------------------------------------------------------


def isolation_targets(plan, server_port: int) -> list[tuple[str, str, int]]:
    """What a VPN peer must not reach: the router's LAN address (ssh), its VPN and DMZ
    addresses (ssh, http), another VPN address, an internet address."""
    lan_router = next(iter(plan.lan_subnet.hosts()))
    other_peer = next(a for a in reversed(list(plan.vpn_subnet.hosts()))
                      if a not in {p.address for p in plan.peers} and a != plan.vpn_router_address)
    return [
        ("lan", str(lan_router), 22),
        ("router", str(plan.vpn_router_address), 22),
        ("router", str(plan.vpn_router_address), 80),
        ("router", str(plan.dmz_router_address), 22),
        ("peer", str(other_peer), 22),
        ("internet", "1.1.1.1", 443),
    ]


def suite_args(plan, settings, source: str | None, proxy_allows: tuple[str, ...] = ()) -> dict:
    """``run_suite`` arguments for the plan's server: its URL, the first warm (else declared)
    model, proxy mode from its data (with ``proxy_allows``, the clients' tools' endpoints the
    proxy forwards), and isolation targets when ``source`` (this controller's address towards
    the server) is on the VPN."""
    from deploys.client_plan import server_base_url

    model = (settings.warm_models or settings.models or (None,))[0]
    on_vpn = source is not None and ipaddress.ip_address(source) in plan.vpn_subnet
    return {"base_url": server_base_url(plan.server_address, plan.ollama_port),
            "model": getattr(model, "name", None), "proxy": settings.proxy == "haproxy",
            "proxy_allows": proxy_allows if settings.proxy == "haproxy" else (),
            "isolate": isolation_targets(plan, plan.ollama_port) if on_vpn else []}


def _deploy() -> None:
    from pyinfra import host, logger
    from pyinfra.api.exceptions import DeployError
    from pyinfra.operations import python

    from deploys.client_tools import proxy_paths
    from deploys.plan import client_datas, current_plan
    from deploys.server_plan import validate_server
    from deploys.versions import route_source

    if "server" not in host.groups:
        return
    plan = current_plan()
    settings, errors = validate_server(host.name, host.data.dict())
    if settings is None:
        raise DeployError("invalid server data:\n" + "\n".join(f"  - {e}" for e in errors))
    args = suite_args(plan, settings, route_source(str(plan.server_address)),
                      proxy_paths(client_datas(plan)))
    base_url, model_name = args["base_url"], args["model"]
    json_path = host.data.get("verify_json")
    junit_path = host.data.get("verify_junit")

    def run() -> None:
        results = run_suite(**args)
        for r in results:
            (logger.error if r.status == "failed" else logger.info)(
                f"{host.print_prefix}{line(r)}")
        text = report(base_url, results, _version(results), model_name, json_path, junit_path)
        failed = [r.id for r in results if r.status == "failed"]
        if failed:
            raise RuntimeError(f"{text}; failed: {', '.join(failed)}")
        logger.info(f"{host.print_prefix}{text}")

    python.call(name=f"API acceptance suite against {base_url}", function=run)


if __name__ == "__main__":
    sys.exit(main())
elif __name__ != "deploys.verify":  # executed by pyinfra as a deploy file
    _deploy()
