"""`python -m infrastructure.node up|down|status`: a single-node Kubernetes cluster on this machine."""

from __future__ import annotations

import argparse
import sys

from infrastructure.apiserver.build import BuildError
from infrastructure.node.config import DEFAULT_PORTS, NodeConfigError, load_config, port_variable
from infrastructure.node.node import NodeStartFailed, NodeUnavailable, down, status, up


def _port(value: str) -> tuple[str, int]:
    name, _, port = value.partition("=")
    if name not in DEFAULT_PORTS or not port.isdigit():
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected NAME=PORT with NAME one of {', '.join(DEFAULT_PORTS)}"
        )
    return name, int(port)


def main(argv: list[str] | None = None) -> int:
    ports = ", ".join(f"{name} {port} ({port_variable(name)})" for name, port in DEFAULT_PORTS.items())
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.node",
        description=__doc__,
        epilog=f"ports (default and variable): {ports}",
    )
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--home", help="state folder (LAKEHOUSE_CLUSTER_HOME; default .lakehouse/cluster)")
    parser.add_argument("--port", action="append", type=_port, default=[], metavar="NAME=PORT")
    parser.add_argument("--wipe", action="store_true", help="down: also delete the state folder")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.home, dict(args.port))
        if args.action == "up":
            up(config)
        elif args.action == "down":
            down(config, wipe=args.wipe)
        else:
            return 0 if status(config) else 3
    except (NodeConfigError, NodeUnavailable, NodeStartFailed, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NodeUnavailable | NodeConfigError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
