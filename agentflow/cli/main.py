"""`agentflow`: the command line. The one composition root: it may start the daemons."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from agentflow.cli import agent, certs, commands, events, tokens
from agentflow.cli.router_status import cmd_router_status
from agentflow.config import ENV_PREFIX, NODE_ADMIN_SOCKET, default_data_home, default_node_data_dir
from agentflow.spec import parse_duration
from agentflow.telemetry import LEVELS

DEFAULT_SERVER = "127.0.0.1:7070"
DAEMONS = ("controlplane", "noded", "router")
DEFAULT_ROUTER = "127.0.0.1:4000"

EPILOG = """\
exit codes: 0 success; 1 run failed or cancelled (or the request was refused);
            2 invalid workflow, input or arguments; 3 control plane unreachable
"""


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text, allow_zero=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentflow",
        description="Run AI-agent workflows as WebAssembly across a fleet of hosts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("AGENTFLOW_SERVER", DEFAULT_SERVER),
        metavar="HOST:PORT",
        help=f"control plane address (env AGENTFLOW_SERVER; default {DEFAULT_SERVER})",
    )
    for flag, env, text in (("--tls-ca", "AGENTFLOW_TLS_CA", "CA of the control plane's certificate"),
                            ("--tls-cert", "AGENTFLOW_TLS_CERT", "client certificate (agentflow certs issue --admin)"),
                            ("--tls-key", "AGENTFLOW_TLS_KEY", "its key")):  # fmt: skip
        parser.add_argument(flag, type=Path, default=os.environ.get(env), metavar="FILE", help=f"{text} (env {env})")
    parser.add_argument("--token-file", type=Path, default=None, metavar="FILE",
                        help="bearer token for the control plane (or env AGENTFLOW_TOKEN)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Client commands also take --server after the command name; it overrides one given before.
    server_after = argparse.ArgumentParser(add_help=False)
    server_after.add_argument("--server", default=argparse.SUPPRESS, metavar="HOST:PORT",
                              help="control plane address (may also come before the command)")  # fmt: skip

    up = sub.add_parser(
        "up",
        help="run a control plane and a local node in the foreground",
        description="Each flag also reads AGENTFLOW_<FLAG> (e.g. AGENTFLOW_DATA_DIR) from the environment; "
        "other AGENTFLOW_* settings (e.g. AGENTFLOW_SLOTS) reach the daemons unchanged.",
    )
    up.add_argument("--data-dir", type=Path, default=_env("DATA_DIR", str(default_data_home())), metavar="DIR",
                    help=f"state directory (default {default_data_home()})")  # fmt: skip
    up.add_argument("--port", type=int, default=_env("PORT", "7070"),
                    help="control plane gRPC port (0 picks one; default 7070)")  # fmt: skip
    up.add_argument("--metrics-port", type=int, default=_env("METRICS_PORT", "9470"),
                    help="control plane /metrics port; the node uses the next one (0 picks; default 9470)")  # fmt: skip
    up.add_argument("--router-port", type=int, default=_env("ROUTER_PORT", "4000"),
                    help="the LLM router's HTTP port (0 picks one; default 4000)")  # fmt: skip
    up.add_argument("--dev", action="store_true", default=_env("DEV", "").lower() in ("1", "true", "yes"),
                    help="answer LLM calls with the router's offline, deterministic dev provider")  # fmt: skip
    up.add_argument("--nats-url", default=_env("NATS_URL", ""), metavar="URL",
                    help="publish the control plane's events to this NATS JetStream server")  # fmt: skip
    up.add_argument("--name", default=_env("NAME", ""), help="name of the local node (default: the host name)")
    up.add_argument("--log-level", choices=LEVELS, default=_env("LOG_LEVEL", "info"))
    up.set_defaults(handler=_up)

    for daemon, text in (("controlplane", "run the control plane daemon"), ("noded", "run the node daemon")):
        d = sub.add_parser(daemon, help=text, add_help=False)
        d.add_argument("daemon_args", nargs=argparse.REMAINDER)
        d.set_defaults(handler=None)
    router = sub.add_parser(
        "router",
        help="run the host's LLM router (agentflow router --help), or: agentflow router status",
        add_help=False,
    )
    router_sub = router.add_subparsers(dest="router_command", metavar="status")
    rstatus = router_sub.add_parser("status", help="providers, breakers, cache size, spend today")
    rstatus.add_argument("--router", default=_env("ROUTER", DEFAULT_ROUTER), metavar="HOST:PORT",
                         help=f"the router's address (env AGENTFLOW_ROUTER; default {DEFAULT_ROUTER})")  # fmt: skip
    rstatus.add_argument("--json", action="store_true")
    rstatus.set_defaults(handler=cmd_router_status)

    certs.add_parser(sub)
    agent.add_parser(sub)
    tokens.add_parser(sub, parents=[server_after])
    events.add_parser(sub, parents=[server_after])

    validate = sub.add_parser("validate", help="check a workflow file offline")
    validate.add_argument("workflow", metavar="WORKFLOW.yaml")
    validate.set_defaults(handler=commands.cmd_validate)

    run = sub.add_parser("run", help="submit a workflow (uploading its local modules)", parents=[server_after])
    run.add_argument("workflow", metavar="WORKFLOW.yaml")
    run.add_argument("--input", metavar="JSON", help="run input as JSON")
    run.add_argument("--input-file", metavar="FILE", help="run input from a JSON file ('-' for stdin)")
    run.add_argument("--wait", action="store_true", help="follow the run to its end and print the outputs")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.set_defaults(handler=commands.cmd_run)

    status = sub.add_parser("status", help="show a run", parents=[server_after])
    status.add_argument("run_id", metavar="RUN_ID")
    status.add_argument("--wait", action="store_true", help="follow the run to its end")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=commands.cmd_status)

    runs = sub.add_parser("runs", help="list recent runs", parents=[server_after])
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--workflow", help="only runs of this workflow")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=commands.cmd_runs)

    cancel = sub.add_parser("cancel", help="cancel a run", parents=[server_after])
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(handler=commands.cmd_cancel)

    retry = sub.add_parser(
        "retry", help="run the failed and skipped steps of a finished run again", parents=[server_after]
    )
    retry.add_argument("run_id", metavar="RUN_ID")
    retry.add_argument("--wait", action="store_true")
    retry.add_argument("--json", action="store_true")
    retry.set_defaults(handler=commands.cmd_retry)

    nodes = sub.add_parser("nodes", help="list nodes", parents=[server_after])
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(handler=commands.cmd_nodes)

    drain = sub.add_parser(
        "drain", help="place no new steps on a node; the steps it runs finish", parents=[server_after]
    )
    drain.add_argument("node", metavar="NODE")
    drain.add_argument("--deadline", type=_duration, metavar="DURATION",
                       help="then cancel what still runs there and place it elsewhere (0s: now)")  # fmt: skip
    drain.add_argument("--wait", action="store_true", help="return once nothing runs on the node")
    drain.add_argument("--json", action="store_true")
    drain.set_defaults(handler=commands.cmd_drain)

    undrain = sub.add_parser("undrain", help="let a draining node take steps again", parents=[server_after])
    undrain.add_argument("node", metavar="NODE")
    undrain.add_argument("--json", action="store_true")
    undrain.set_defaults(handler=commands.cmd_undrain)

    node = sub.add_parser("node", help="this host's noded, through its local admin socket")
    node_sub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    local = argparse.ArgumentParser(add_help=False)
    local.add_argument(
        "--data-dir",
        default=str(default_node_data_dir()),
        metavar="DIR",
        help=f"the node's data dir, whose {NODE_ADMIN_SOCKET} is used (default {default_node_data_dir()})",
    )
    local.add_argument("--socket", default="", metavar="PATH", help="the admin socket itself (noded --admin-socket)")
    local.add_argument("--json", action="store_true")
    nstatus = node_sub.add_parser("status", help="connection, drain state, running steps, outbox", parents=[local])
    nstatus.set_defaults(handler=commands.cmd_node_status)
    ndrain = node_sub.add_parser("drain", help="ask the control plane to drain this node", parents=[local])
    ndrain.add_argument("--deadline", type=_duration, metavar="DURATION",
                        help="then its running steps move elsewhere (0s: now)")  # fmt: skip
    ndrain.add_argument("--wait", action="store_true", help="return once nothing runs on the node")
    ndrain.set_defaults(handler=commands.cmd_node_drain)
    nundrain = node_sub.add_parser("undrain", help="let this node take steps again", parents=[local])
    nundrain.set_defaults(handler=commands.cmd_node_undrain)

    module = sub.add_parser("module", help="manage WebAssembly modules")
    module_sub = module.add_subparsers(dest="module_command", metavar="ACTION", required=True)
    push = module_sub.add_parser("push", help="upload a module; prints its sha256 digest", parents=[server_after])
    push.add_argument("file", metavar="FILE.wasm")
    push.add_argument("--json", action="store_true")
    push.set_defaults(handler=commands.cmd_module_push)
    mlist = module_sub.add_parser("list", help="list stored modules", parents=[server_after])
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(handler=commands.cmd_module_list)
    return parser


def _up(args: argparse.Namespace, out: object) -> int:
    from agentflow.cli.up import run_up

    return run_up(args, sys.stdout)


def _run_daemon(name: str, argv: list[str]) -> int:
    if name == "controlplane":
        from controlplane.app import main as controlplane_main

        return controlplane_main(argv)
    if name == "router":
        from router.app import main as router_main

        return router_main(argv)
    from noded.app import main as noded_main

    return noded_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Daemon subcommands take their own flags (they also accept TOML and env settings).
    if argv and argv[0] in DAEMONS and argv[1:2] != ["status"]:
        return _run_daemon(argv[0], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.handler is None:
        return _run_daemon(args.command, args.daemon_args)
    return commands.run_command(args)


if __name__ == "__main__":
    sys.exit(main())
