"""The `lakehouse` command line: generate data, run or compile the pipeline, serve and query the model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from components.core.settings import (
    PROFILES,
    Settings,
    SettingsError,
    get_settings,
    missing_credentials,
    scoped_environ,
)


def _cmd_generate(args: argparse.Namespace) -> int:
    from components.sources.ecommerce.generator import generate
    from pipelines.data_version import track_data

    settings = get_settings(args.profile)
    out = Path(args.out) if args.out else settings.data_dir
    if out.resolve() == settings.data_dir:
        _say_how_new_data_is_merged(settings)
    started = time.perf_counter()
    print(
        f"generating scale={args.scale} seed={args.seed} dirty_rate={args.dirty_rate} into {out}", flush=True
    )
    rows = generate(
        out, scale=args.scale, seed=args.seed, dirty_rate=args.dirty_rate, start=args.start, days=args.days
    )
    for table, count in rows.items():
        print(f"  {table:<12} {count:>9,} rows")
    print(f"done in {time.perf_counter() - started:.1f} s", flush=True)
    if not args.no_dvc:
        print(track_data(out))
    return 0


def _say_how_new_data_is_merged(settings: Settings) -> None:
    """Before new source files replace the old ones: tell the user what the next run will do with them."""
    from components.operations.maintenance import lakehouse_tables

    try:
        bronze = [t for t in lakehouse_tables(settings) if t.startswith("bronze.")]
    except Exception:  # noqa: BLE001 - a catalog that cannot be read has nothing to warn about
        return
    if bronze:
        print(
            f"note: the {settings.profile!r} lakehouse ({settings.catalog_uri}) already holds {len(bronze)} "
            "bronze tables loaded from earlier source files. The next `lakehouse run` merges the new files "
            "into them as updates: rows with a known key are replaced, new keys are added, nothing is "
            "removed. To start clean instead: `lakehouse reset --yes`, then `lakehouse run`.",
            flush=True,
        )


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run_local import run_local

    settings = get_settings(args.profile)
    if settings.profile == "cluster":
        print(
            "the cluster profile runs on a KFP API server: `lakehouse compile --profile cluster`, "
            "then `lakehouse submit --host URL`"
        )
        return 2
    started = time.perf_counter()
    result = run_local(settings, full_refresh=args.full_refresh, wait=args.wait)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    print(f"pipeline finished in {time.perf_counter() - started:.1f} s")
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    from components.operations.reset import reset_lakehouse
    from pipelines.run_local import require_services
    from pipelines.run_lock import lakehouse_lock

    settings = get_settings(args.profile)
    models = " and the registered model" if args.models else ""
    if not args.yes:
        print(
            f"`lakehouse reset` drops every bronze/silver/gold table of the {settings.profile!r} lakehouse "
            f"({settings.catalog_uri}) with its files, the online features, the Feast registry and dbt's and "
            f"dlt's state under {settings.home}{models}. The source files in {settings.data_dir} stay. "
            "Run it again with --yes to go ahead."
        )
        return 1
    require_services(settings)
    with lakehouse_lock(settings, wait=args.wait):
        done = reset_lakehouse(settings, models=args.models)
    for line in done or ["nothing to remove: the lakehouse was empty"]:
        print(f"  {line}")
    print("reset done: `lakehouse run` loads the source files into a fresh lakehouse")
    return 0


def _cmd_maintenance(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from components.operations.maintenance import run_maintenance
    from pipelines.run_local import require_services
    from pipelines.run_lock import lakehouse_lock

    settings = get_settings(args.profile)
    retention = (
        args.retention_days if args.retention_days is not None else settings.policy.snapshot_retention_days
    )
    require_services(settings)
    with lakehouse_lock(settings, wait=args.wait):
        reports = run_maintenance(
            settings,
            retention=timedelta(days=retention),
            orphan_age=timedelta(minutes=args.orphan_minutes),
            remove_orphans=args.remove_orphans,
            compact=args.compact,
        )
    for report in reports:
        print(report.summary())
        for path in report.orphan_files if args.verbose else ():
            print(f"    {'removed' if report.orphans_removed else 'orphan'} {path}")
    orphans = sum(len(r.orphan_files) for r in reports)
    if orphans and not args.remove_orphans:
        print(f"{orphans} orphan files listed (--verbose names them): remove them with --remove-orphans")
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from pipelines.compile import compile_pipeline

    settings = get_settings(args.profile) if args.profile else None
    print(f"compiled to {compile_pipeline(Path(args.output), settings)}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from pipelines.run_local import SERVING_SERVICES, require_services
    from serving.server import main as serve

    require_services(get_settings(args.profile), only=SERVING_SERVICES)
    argv = ["--profile", args.profile] if args.profile else []
    if args.port:
        argv += ["--port", str(args.port)]
    if args.host:
        argv += ["--host", args.host]
    if args.grpc_port:
        argv += ["--grpc-port", str(args.grpc_port)]
    argv += ["--workers", str(args.workers)]
    return serve(argv) or 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from components.core.lineage import format_lineage, model_lineage

    lineage = model_lineage(get_settings(args.profile), args.model_version)
    print(json.dumps(lineage, indent=2) if args.json else format_lineage(lineage))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import httpx

    from components.core.serving_client import prediction_request

    settings = get_settings(args.profile)
    base = args.url or f"http://{settings.serving_host}:{settings.serving_port}"
    path, body = prediction_request(args.protocol, args.customer_ids)
    try:
        response = httpx.post(base + path, json=body, timeout=30)
    except httpx.HTTPError as exc:
        print(
            f"cannot reach the model server at {base}: {exc} (start it with `lakehouse serve`)",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(response.json(), indent=2))
    return 0 if response.is_success else 1


def _cmd_manifests(args: argparse.Namespace) -> int:
    from infrastructure.cluster.manifests import KUBERNETES_DIR, render

    sys.stdout.write(render(args.overlay, Path(args.root) if args.root else KUBERNETES_DIR))
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from pipelines.submit import submit

    parameters = {"profile": "cluster"}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes KEY=VALUE, got {item!r}")
        parameters[key] = value
    done = submit(
        Path(args.package),
        args.host,
        parameters,
        experiment=args.experiment,
        run_name=args.run_name,
        schedule=args.schedule,
    )
    kind = "recurring run" if done.recurring else "run"
    print(f"{kind} {done.run_id} of pipeline version {done.version_id}: {done.url}")
    if args.wait is not None and not done.recurring:
        from pipelines.submit import failed_steps, wait_for_run

        state = wait_for_run(args.host, done.run_id, timeout=args.wait)
        print(f"run {done.run_id} ended {state}")
        if state == "SUCCEEDED":
            return 0
        for line in failed_steps(done.run_id) or [f"which step failed: {done.url}"]:
            print(line, file=sys.stderr)
        return 1
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from components.deployment.deploy import deploy_to_cluster

    settings = get_settings(args.profile or "cluster")
    rollout = deploy_to_cluster(
        settings, args.model_version, timeout=args.timeout, wait=not args.no_wait, kubeconfig=args.kubeconfig
    )
    state = "applied" if rollout.ready_after is None else f"ready after {rollout.ready_after:.0f} s"
    print(
        f"InferenceService {rollout.namespace}/{rollout.name}: model version {rollout.model_version}, "
        f"image {rollout.image}, {state}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profile", choices=PROFILES, help="settings profile (default: $LAKEHOUSE_PROFILE or local)"
    )
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="source data commands")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    gen = data_commands.add_parser(
        "generate", parents=[common], help="generate the e-commerce source files (deterministic, seeded)"
    )
    gen.add_argument("--scale", type=float, default=1.0, help="1.0 = 1,000 customers (default 1.0)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--dirty-rate", type=float, default=0.02, help="share of dirty rows (default 0.02)")
    gen.add_argument("--start", default="2024-01-01", help="first day of the business (default 2024-01-01)")
    gen.add_argument("--days", type=int, default=540, help="days of business history (default 540)")
    gen.add_argument("--out", help="output folder (default: the profile's data folder)")
    gen.add_argument("--no-dvc", action="store_true", help="do not record the data version with DVC")
    gen.set_defaults(func=_cmd_generate)

    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another run that holds the lakehouse (default 0: fail at once)",
    )
    run = commands.add_parser(
        "run", parents=[common, waiting], help="run the whole pipeline locally with kfp.local"
    )
    run.add_argument(
        "--full-refresh", action="store_true", help="rebuild silver and gold from bronze (dbt --full-refresh)"
    )
    run.set_defaults(func=_cmd_run)

    reset = commands.add_parser(
        "reset", parents=[common, waiting], help="start over: drop the lakehouse's tables and their state"
    )
    reset.add_argument("--yes", action="store_true", help="go ahead (without it, say what would be removed)")
    reset.add_argument("--models", action="store_true", help="delete the registered model (all versions) too")
    reset.set_defaults(func=_cmd_reset)

    maint = commands.add_parser(
        "maintenance",
        parents=[common, waiting],
        help="expire old snapshots, list or remove orphan files, compact small files",
    )
    maint.add_argument(
        "--retention-days", type=float, help="expire snapshots older than this (default: the profile's)"
    )
    maint.add_argument(
        "--orphan-minutes",
        type=float,
        default=60.0,
        help="only files older than this can be orphans, so a writer at work keeps its files (default 60)",
    )
    maint.add_argument("--remove-orphans", action="store_true", help="delete the orphan files found")
    maint.add_argument("--compact", action="store_true", help="rewrite tables made of many small files")
    maint.add_argument("--verbose", action="store_true", help="name every orphan file")
    maint.set_defaults(func=_cmd_maintenance)

    comp = commands.add_parser("compile", parents=[common], help="compile the pipeline to KFP YAML")
    comp.add_argument("--output", default=str(Path(__file__).with_name("churn_training.yaml")))
    comp.set_defaults(func=_cmd_compile)

    serve = commands.add_parser(
        "serve", parents=[common], help="start the KServe model server for the champion model"
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--grpc-port", type=int, help="serve the Open Inference Protocol over gRPC too")
    serve.add_argument("--workers", type=int, default=1, help="HTTP worker processes (default 1)")
    serve.set_defaults(func=_cmd_serve)

    lineage = commands.add_parser(
        "lineage", parents=[common], help="the data, snapshots and runs a model version came from"
    )
    lineage.add_argument("model_version", nargs="?", help="registered version (default: the champion)")
    lineage.add_argument("--json", action="store_true", help="print the lineage as JSON")
    lineage.set_defaults(func=_cmd_lineage)

    predict = commands.add_parser(
        "predict", parents=[common], help="ask the running model server for churn probabilities"
    )
    predict.add_argument("customer_ids", type=int, nargs="+", metavar="CUSTOMER_ID")
    predict.add_argument("--protocol", choices=("v1", "v2"), default="v1")
    predict.add_argument("--url", help="server base URL (default: the profile's serving host and port)")
    predict.set_defaults(func=_cmd_predict)
    sub = commands.add_parser(
        "submit", help="upload the compiled pipeline to a KFP API server and start a run (or a recurring run)"
    )
    sub.add_argument("--host", required=True, help="KFP API/UI base URL, e.g. http://127.0.0.1:8080")
    sub.add_argument(
        "--package", default=str(Path(__file__).with_name("churn_training.yaml")), help="compiled pipeline"
    )
    sub.add_argument("--experiment", default="churn-training", help="experiment name (created when missing)")
    sub.add_argument("--run-name", help="run name (default: churn-training <UTC time>)")
    sub.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="a pipeline parameter (repeatable)"
    )
    sub.add_argument(
        "--schedule", metavar="CRON", help="create a recurring run on this cron schedule instead"
    )
    sub.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait up to this long for the run to end; exit 1 unless it SUCCEEDED",
    )
    sub.set_defaults(func=_cmd_submit)

    deploy = commands.add_parser(
        "deploy",
        parents=[common],
        help="create or update the churn InferenceService for the champion (Kubernetes API) and wait for it",
    )
    deploy.add_argument("--model-version", help="roll out this registered version (default: the champion)")
    deploy.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for Ready (default 600)"
    )
    deploy.add_argument("--no-wait", action="store_true", help="return once the API server accepted it")
    deploy.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    deploy.set_defaults(func=_cmd_deploy)

    manifests = commands.add_parser(
        "manifests", help="check the Secrets' env files and print an overlay of the cluster manifests"
    )
    manifests.add_argument(
        "--overlay", default="dev", help="overlay of infrastructure/kubernetes (dev, prod)"
    )
    manifests.add_argument("--root", help="manifests folder (default: infrastructure/kubernetes)")
    manifests.set_defaults(func=_cmd_manifests)
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


if __name__ == "__main__":
    sys.exit(main())
