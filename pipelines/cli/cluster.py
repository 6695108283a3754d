"""The platform on Kubernetes: `lakehouse submit` to a KFP API server, `deploy`, `manifests`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.core.settings import get_settings
from pipelines.compile import DEFAULT_OUTPUT


def submit(args: argparse.Namespace) -> int:
    from pipelines.submit import submit as submit_package

    parameters = {"profile": "cluster"}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes KEY=VALUE, got {item!r}")
        parameters[key] = value
    done = submit_package(
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
        failed = failed_steps(done.run_id)
        for line in failed or [f"which step failed: {done.url}"]:
            print(line, file=sys.stderr)
        _alert_failed_run(done.run_id, done.url, state, failed)
        return 1
    return 0


def _alert_failed_run(run_id: str, url: str, state: str, failed: list[str]) -> None:
    """A run that did not succeed, to the `cluster` profile's alert webhook and file (KFP's own exit handler
    cannot do it on the backend served here: see pipelines/README.md)."""
    from components.core.alerts import AlertKind, notify

    summary = f"churn-training run {run_id} ended {state}" + (f": {failed[0]}" if failed else "")
    notify(
        get_settings("cluster"), AlertKind.RUN_FAILED, summary, run_id=run_id, url=url, failed_steps=failed
    )


def deploy(args: argparse.Namespace) -> int:
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


def manifests(args: argparse.Namespace) -> int:
    import yaml

    from infrastructure.cluster.manifests import (
        API_EGRESS_POLICY,
        API_PORTS,
        FROM_CLUSTER,
        KUBERNETES_DIR,
        api_destination,
        api_server_destinations,
        limit_api_egress,
        objects,
        render,
    )

    given = args.api_server or []
    if FROM_CLUSTER in given:
        destinations = api_server_destinations(args.kubeconfig)
    else:
        destinations = [api_destination(text) for text in given]
    rendered = render(args.overlay, Path(args.root) if args.root else KUBERNETES_DIR)
    if not destinations:
        ports = " and ".join(str(port) for port in API_PORTS)
        print(
            f"note: NetworkPolicy {API_EGRESS_POLICY} lets the pods that use the Kubernetes API reach TCP "
            f"{ports} at any address; --api-server {FROM_CLUSTER} (or ADDRESS[:PORT]) limits it to the "
            "API server",
            file=sys.stderr,
        )
        sys.stdout.write(rendered)
        return 0
    limited = limit_api_egress(objects(rendered), destinations)
    shown = ", ".join(f"{cidr} port {'/'.join(map(str, ports))}" for cidr, ports in destinations)
    print(f"NetworkPolicy {API_EGRESS_POLICY}: only {shown}", file=sys.stderr)
    sys.stdout.write(yaml.safe_dump_all(limited, sort_keys=False))
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub = commands.add_parser(
        "submit", help="upload the compiled pipeline to a KFP API server and start a run (or a recurring run)"
    )
    sub.add_argument("--host", required=True, help="KFP API/UI base URL, e.g. http://127.0.0.1:8080")
    sub.add_argument("--package", default=str(DEFAULT_OUTPUT), help="compiled pipeline")
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
    sub.set_defaults(func=submit)

    rollout = commands.add_parser(
        "deploy",
        parents=[common],
        help="create or update the churn InferenceService for the champion (Kubernetes API) and wait for it",
    )
    rollout.add_argument("--model-version", help="roll out this registered version (default: the champion)")
    rollout.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for Ready (default 600)"
    )
    rollout.add_argument("--no-wait", action="store_true", help="return once the API server accepted it")
    rollout.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    rollout.set_defaults(func=deploy)

    overlay = commands.add_parser(
        "manifests", help="check the Secrets' env files and print an overlay of the cluster manifests"
    )
    overlay.add_argument("--overlay", default="dev", help="overlay of infrastructure/kubernetes (dev, prod)")
    overlay.add_argument("--root", help="manifests folder (default: infrastructure/kubernetes)")
    overlay.add_argument(
        "--api-server",
        action="append",
        metavar="ADDRESS[:PORT]",
        help="let the pods that use the Kubernetes API reach only this address (repeatable; without a port "
        "443 and 6443); `from-cluster` reads the `kubernetes` Service's and its endpoints' addresses from "
        "the cluster of the kubeconfig",
    )
    overlay.add_argument(
        "--kubeconfig", help="kubeconfig for from-cluster (default: $KUBECONFIG, ~/.kube/config)"
    )
    overlay.set_defaults(func=manifests)
