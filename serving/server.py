"""Run the churn model server: `python -m serving.server [--host H] [--port N] ...` or in a child process."""

from __future__ import annotations

import argparse
import os

from components.core.settings import get_settings, missing_credentials


def main(argv: list[str] | None = None) -> None:
    """`python -m serving.server [--profile P] [--host H] [--port N] [--grpc-port G] [--workers W]`."""
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__)
    parser.add_argument("--profile", help="settings profile (default: $LAKEHOUSE_PROFILE, else local)")
    parser.add_argument("--host", help="address to bind (default: settings.serving_host)")
    parser.add_argument("--port", type=int, help="HTTP port (default: settings.serving_port)")
    parser.add_argument("--grpc-port", type=int, help="serve the V2 protocol over gRPC on this port too")
    parser.add_argument("--workers", type=int, default=1, help="HTTP worker processes (default 1)")
    args = parser.parse_args(argv)
    from serving.metrics import remove_shared_folder, use_shared_folder

    use_shared_folder()  # before KServe is imported: its metrics and ours, summed over the workers
    from serving.model_server import serve

    settings = get_settings(args.profile)
    # MLflow's S3 client reads the keys from the environment: a `stack` env file's, where it has none
    os.environ.update(missing_credentials(settings))
    try:
        serve(settings, args.host, args.port, args.grpc_port, args.workers)
    finally:
        remove_shared_folder()


if __name__ == "__main__":
    main()
