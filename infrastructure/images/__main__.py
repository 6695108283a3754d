"""`python -m infrastructure.images build [NAMES...]`: build the missing images, import them into a node."""

from __future__ import annotations

import argparse
import sys
import time

from infrastructure.apiserver.build import BuildError
from infrastructure.images.build import build_images, import_into_node, node_running, select
from infrastructure.node.config import NodeConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.images", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="build what is missing (all images when none is named)")
    build.add_argument("names", nargs="*", help="short names of images (see `list`)")
    build.add_argument("--no-import", action="store_true", help="do not import into a running node")
    sub.add_parser("list", help="the images, their names and what each stands in for")
    args = parser.parse_args(argv)
    try:
        if args.action == "list":
            for recipe in select([]):
                instead = f" (instead of {recipe.stands_in_for})" if recipe.stands_in_for else ""
                print(f"{recipe.short:12} {recipe.name}{instead}: {recipe.what}")
            return 0
        started = time.monotonic()
        built = build_images(args.names)
        for item in built:
            state = f"built in {item.seconds:.0f} s" if item.built else "cached"
            print(f"{item.recipe.short:12} {item.recipe.name:45} {state}: {item.tarball}")
        config = load_config()
        if not args.no_import and node_running(config):
            import_into_node(built, config)
        elif not args.no_import:
            print(f"no node runs ({config.containerd_socket} is absent): nothing imported")
        print(f"done in {time.monotonic() - started:.1f} s")
    except (BuildError, NodeConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
