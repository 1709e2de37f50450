"""`agentflow certs init` and `agentflow certs issue`: the cluster's CA and its certificates."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TextIO

from agentflow.certs import CertError, Kind, init_ca, issue

DEFAULT_DIR = "agentflow-pki"
EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = sub.add_parser("certs", help="the cluster's CA and the certificates of nodes, servers and admins")
    certs_sub = certs.add_subparsers(dest="certs_command", metavar="init|issue", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("AGENTFLOW_PKI_DIR", DEFAULT_DIR)),
        help=f"where the CA and certificates live (env AGENTFLOW_PKI_DIR; default ./{DEFAULT_DIR})",
    )
    init = certs_sub.add_parser("init", help="create the CA (ca.pem, ca-key.pem)", parents=[where])
    init.add_argument("--name", default="AgentFlow CA", help="the CA's common name")
    init.set_defaults(handler=cmd_certs_init)
    iss = certs_sub.add_parser("issue", help="issue a certificate signed by the CA", parents=[where])
    who = iss.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", metavar="NAME", help="a node's client certificate: it may register as NAME only")
    who.add_argument("--server", metavar="NAME", help="the control plane's server certificate (NAME is a SAN)")
    who.add_argument("--admin", metavar="NAME", help="a client certificate for the CLI or grpcurl")
    iss.add_argument("--san", action="append", default=[], metavar="HOST|IP",
                     help="another name or address the server is reached at (repeatable)")  # fmt: skip
    iss.set_defaults(handler=cmd_certs_issue)


def cmd_certs_init(args: argparse.Namespace, out: TextIO) -> int:
    try:
        made = init_ca(args.dir, name=args.name)
    except CertError as exc:
        print(f"agentflow certs init: {exc}", file=out)
        return EXIT_USAGE
    print(f"CA: {made.cert} (key {made.key}, keep it off the nodes)", file=out)
    return EXIT_OK


def cmd_certs_issue(args: argparse.Namespace, out: TextIO) -> int:
    kind, name = next(
        (k, v) for k, v in ((Kind.NODE, args.node), (Kind.SERVER, args.server), (Kind.ADMIN, args.admin)) if v
    )
    if args.san and kind is not Kind.SERVER:
        print("agentflow certs issue: --san goes with --server", file=out)
        return EXIT_USAGE
    try:
        made = issue(args.dir, kind, name, sans=tuple(args.san))
    except CertError as exc:
        print(f"agentflow certs issue: {exc}", file=out)
        return EXIT_USAGE
    print(f"{kind.value} {name}: {made.cert} (key {made.key})", file=out)
    return EXIT_OK
