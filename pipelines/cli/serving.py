"""The model server on this machine: `lakehouse serve`, `lakehouse predict` against any server, and
`lakehouse predictions load`, which loads what the servers logged into the lakehouse."""

from __future__ import annotations

import argparse
import json
import sys

from components.core.settings import get_settings


def serve(args: argparse.Namespace) -> int:
    from pipelines.run_local import SERVING_SERVICES, require_services
    from serving.server import main as serve_main

    require_services(get_settings(args.profile), only=SERVING_SERVICES)
    argv = ["--profile", args.profile] if args.profile else []
    if args.port:
        argv += ["--port", str(args.port)]
    if args.host:
        argv += ["--host", args.host]
    if args.grpc_port:
        argv += ["--grpc-port", str(args.grpc_port)]
    argv += ["--workers", str(args.workers)]
    return serve_main(argv) or 0


def predict(args: argparse.Namespace) -> int:
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


def load_predictions(args: argparse.Namespace) -> int:
    from components.ingestion.prediction_log import load_prediction_log

    settings = get_settings(args.profile)
    result = load_prediction_log(settings)
    for problem in result.problems:
        print(f"left out: {problem}", file=sys.stderr)
    print(result.summary())
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    server = commands.add_parser(
        "serve", parents=[common], help="start the KServe model server for the champion model"
    )
    server.add_argument("--host")
    server.add_argument("--port", type=int)
    server.add_argument("--grpc-port", type=int, help="serve the Open Inference Protocol over gRPC too")
    server.add_argument("--workers", type=int, default=1, help="HTTP worker processes (default 1)")
    server.set_defaults(func=serve)

    ask = commands.add_parser(
        "predict", parents=[common], help="ask the running model server for churn probabilities"
    )
    ask.add_argument("customer_ids", type=int, nargs="+", metavar="CUSTOMER_ID")
    ask.add_argument("--protocol", choices=("v1", "v2"), default="v1")
    ask.add_argument("--url", help="server base URL (default: the profile's serving host and port)")
    ask.set_defaults(func=predict)

    predictions = commands.add_parser("predictions", help="the model servers' prediction log")
    predictions_commands = predictions.add_subparsers(
        dest="predictions_command", required=True, metavar="COMMAND"
    )
    load = predictions_commands.add_parser(
        "load",
        parents=[common],
        help="load the sealed prediction log segments into bronze.prediction_log (each exactly once)",
    )
    load.set_defaults(func=load_predictions)
