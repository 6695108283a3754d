"""The `lakehouse` command line: generate data, run or compile the pipeline, serve and query the model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from components.settings import PROFILES, SERVED_MODEL_NAME, SettingsError, get_settings


def _cmd_generate(args: argparse.Namespace) -> int:
    from components.datagen import generate
    from pipelines.data_version import track_data

    settings = get_settings(args.profile)
    out = Path(args.out) if args.out else settings.data_dir
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


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run_local import run_local

    settings = get_settings(args.profile)
    if settings.profile == "cluster":
        print("the cluster profile runs on a KFP API server: `lakehouse compile`, then submit the YAML")
        return 2
    started = time.perf_counter()
    result = run_local(settings)
    print(json.dumps(result, indent=2, default=str))
    print(f"pipeline finished in {time.perf_counter() - started:.1f} s")
    return 0


def _cmd_compile(args: argparse.Namespace) -> int:
    from pipelines.compile import compile_pipeline

    print(f"compiled to {compile_pipeline(Path(args.output))}")
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
    from components.lineage import format_lineage, model_lineage

    lineage = model_lineage(get_settings(args.profile), args.model_version)
    print(json.dumps(lineage, indent=2) if args.json else format_lineage(lineage))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import httpx

    settings = get_settings(args.profile)
    base = args.url or f"http://{settings.serving_host}:{settings.serving_port}"
    if args.protocol == "v1":
        url = f"{base}/v1/models/{SERVED_MODEL_NAME}:predict"
        body = {"instances": [{"customer_id": c} for c in args.customer_ids]}
    else:
        url = f"{base}/v2/models/{SERVED_MODEL_NAME}/infer"
        body = {
            "inputs": [
                {
                    "name": "customer_id",
                    "shape": [len(args.customer_ids)],
                    "datatype": "INT64",
                    "data": args.customer_ids,
                }
            ]
        }
    try:
        response = httpx.post(url, json=body, timeout=30)
    except httpx.HTTPError as exc:
        print(
            f"cannot reach the model server at {base}: {exc} (start it with `lakehouse serve`)",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(response.json(), indent=2))
    return 0 if response.is_success else 1


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

    run = commands.add_parser("run", parents=[common], help="run the whole pipeline locally with kfp.local")
    run.set_defaults(func=_cmd_run)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    from pipelines.run_local import ServicesUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SettingsError, ServicesUnavailable, ValueError, LookupError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
