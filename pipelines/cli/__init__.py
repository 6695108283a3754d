"""The `lakehouse` command line: generate data, run or compile the pipeline, serve and query the model, run
it on a cluster, look after the lakehouse.

One module per group of commands, each adding its own parsers: `data` (generate), `pipeline` (run, compile,
lineage), `lakehouse` (reset, maintenance), `serving` (serve, predict), `cluster` (submit, deploy,
manifests).
"""

from __future__ import annotations

import argparse
import sys

from components.core.settings import (
    PROFILES,
    SettingsError,
    get_settings,
    missing_credentials,
    scoped_environ,
)
from pipelines.cli import cluster, data, lakehouse, pipeline, serving


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile", choices=PROFILES, help="settings profile (default: $LAKEHOUSE_PROFILE or local)"
    )
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another run that holds the lakehouse (default 0: fail at once)",
    )
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data.register(commands, common)
    pipeline.register(commands, common, waiting)
    lakehouse.register(commands, common, waiting)
    serving.register(commands, common)
    cluster.register(commands, common)
    return parser


def _profile_credentials(args: argparse.Namespace) -> dict[str, str]:
    """The credentials of the command's profile its environment lacks (a `stack` env file's S3 keys and
    catalog client): set for the command, whose clients (boto3, pyarrow) read them from the environment."""
    try:
        return missing_credentials(get_settings(getattr(args, "profile", None)))
    except SettingsError:
        return {}  # the command names the problem itself when it reads its settings


def main(argv: list[str] | None = None) -> int:
    from components.core.kubernetes import KubernetesError
    from pipelines.run_local import ServicesUnavailable, StepFailed
    from pipelines.run_lock import LakehouseBusy
    from pipelines.submit import SubmitError

    args = build_parser().parse_args(argv)
    try:
        with scoped_environ(_profile_credentials(args)):
            return args.func(args)
    except (StepFailed, LakehouseBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (
        SettingsError,
        ServicesUnavailable,
        KubernetesError,
        SubmitError,
        ValueError,
        LookupError,
        FileNotFoundError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not type(exc).__module__.startswith("mlflow."):
            raise
        print(f"error: {_registry_failure(args, exc)}", file=sys.stderr)
        return 2


def _registry_failure(args: argparse.Namespace, exc: Exception) -> str:
    """One line for an MLflow registry that cannot be reached or refuses a call (not its traceback)."""
    try:
        where = f" at {get_settings(getattr(args, 'profile', None)).mlflow_tracking_uri}"
    except SettingsError:
        where = ""
    message = " ".join(str(exc).split())
    return f"the MLflow registry{where} failed: {message[:300]}{'...' if len(message) > 300 else ''}"


if __name__ == "__main__":
    sys.exit(main())
