"""`agentflow token create|list|revoke`: bearer tokens (admin role needed)."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any, TextIO

from agentflow import wire
from agentflow.cli import render
from agentflow.cli.commands import EXIT_OK, client_for
from agentflow.spec import parse_duration
from agentflow.v1 import types_pb2
from agentflow.vocabulary import Role


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], *, parents: list[argparse.ArgumentParser]
) -> None:
    token = sub.add_parser("token", help="bearer tokens: join tokens for nodes, admin tokens with roles")
    token_sub = token.add_subparsers(dest="token_command", metavar="create|list|revoke", required=True)
    create = token_sub.add_parser("create", help="create a token (its secret is printed once)", parents=parents)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--ttl", type=_ttl, default=None, help="e.g. 1h, 30d (default: never expires)")
    create.add_argument("--single-use", action="store_true", help="a join token that registers one node")
    create.add_argument("--description", default="")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_token_create)
    listing = token_sub.add_parser("list", help="list tokens (never their secrets)", parents=parents)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by its id", parents=parents)
    revoke.add_argument("token_id", metavar="ID")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(handler=cmd_token_revoke)


def _ttl(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None


def token_json(t: types_pb2.Token) -> dict[str, Any]:
    return {
        "id": t.id,
        "role": wire.from_pb(Role, types_pb2.Role, t.role, field="role").value,
        "description": t.description,
        "created_at": render.timestamp(t.created_at, t.HasField("created_at")),
        "expires_at": render.timestamp(t.expires_at, t.HasField("expires_at")),
        "single_use": t.single_use,
        "used_at": render.timestamp(t.used_at, t.HasField("used_at")),
        "revoked_at": render.timestamp(t.revoked_at, t.HasField("revoked_at")),
    }


def cmd_token_create(args: argparse.Namespace, out: TextIO) -> int:
    role = wire.to_pb(Role(args.role), types_pb2.Role)
    with client_for(args) as client:
        made = client.create_token(role=role, ttl=args.ttl, single_use=args.single_use, description=args.description)
    if args.json:
        print(json.dumps({**token_json(made.token), "token": made.secret}, indent=2), file=out)
    else:
        print(made.secret, file=out)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        tokens = [token_json(t) for t in client.list_tokens()]
    if args.json:
        print(json.dumps(tokens, indent=2), file=out)
        return EXIT_OK
    rows = [[t["id"], t["role"], t["expires_at"] or "never", "yes" if t["single_use"] else "no",
             "revoked" if t["revoked_at"] else ("used" if t["used_at"] else "active"), t["description"]]
            for t in tokens]  # fmt: skip
    print(render.table(rows, ["ID", "ROLE", "EXPIRES", "ONE USE", "STATE", "DESCRIPTION"]), file=out)
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace, out: TextIO) -> int:
    with client_for(args) as client:
        revoked = token_json(client.revoke_token(args.token_id))
    print(json.dumps(revoked, indent=2) if args.json else f"token {revoked['id']} revoked", file=out)
    return EXIT_OK
