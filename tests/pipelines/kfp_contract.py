"""A CONTRACT server for `lakehouse submit`: it implements the Kubeflow Pipelines v2beta1 endpoints that
`kfp.Client` calls (healthz, pipelines, upload, upload_version, experiments, runs, recurringruns), checks
the bearer token and records what it was sent. It is NOT the real KFP API server (see
infrastructure/README.md for why that one is not run here): it proves the requests and their bodies."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

PREFIX = "/apis/v2beta1"


@dataclass
class KfpState:
    """What the contract server holds: objects by id, and the requests it answered."""

    token: str
    pipelines: dict[str, dict] = field(default_factory=dict)
    versions: dict[str, dict] = field(default_factory=dict)
    experiments: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    recurring_runs: dict[str, dict] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    #: the states a run reports, one more each time it is read (then the last one for good)
    run_progress: list[str] = field(default_factory=lambda: ["RUNNING", "SUCCEEDED"])


def _by_display_name(objects: dict[str, dict], query: dict) -> list[dict]:
    wanted = None
    if "filter" in query:
        (predicate,) = json.loads(query["filter"][0])["predicates"]
        assert predicate["key"] == "display_name", predicate
        wanted = predicate["stringValue"]
    return [o for o in objects.values() if wanted is None or o["display_name"] == wanted]


def _handler(state: KfpState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {state.token}":
                return True
            self._answer(401, {"error": "Unauthenticated", "code": 16, "message": "invalid bearer token"})
            return False

        def _uploaded_spec(self) -> dict:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=default).parsebytes(head + raw)
            (upload,) = [
                part
                for part in message.iter_parts()
                if part.get_param("name", header="content-disposition") == "uploadfile"
            ]
            pipeline_spec, platform_spec = yaml.safe_load_all(upload.get_payload(decode=True))
            assert pipeline_spec["pipelineInfo"]["name"] == "churn-training"
            return {"pipeline_spec": pipeline_spec, "platform_spec": platform_spec}

        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            url = urlsplit(self.path)
            state.requests.append(f"GET {url.path}")
            if not self._authorized():
                return
            query = parse_qs(url.query)
            if url.path == f"{PREFIX}/healthz":
                self._answer(200, {"multi_user": False})
            elif url.path == f"{PREFIX}/pipelines":
                found = _by_display_name(state.pipelines, query)
                self._answer(200, {"pipelines": found, "total_size": len(found)} if found else {})
            elif url.path == f"{PREFIX}/experiments":
                found = _by_display_name(state.experiments, query)
                self._answer(200, {"experiments": found, "total_size": len(found)} if found else {})
            elif url.path.startswith(f"{PREFIX}/runs/") and url.path.rsplit("/", 1)[1] in state.runs:
                run = state.runs[url.path.rsplit("/", 1)[1]]
                reads = run["reads"] = run.get("reads", 0) + 1
                run["state"] = state.run_progress[min(reads, len(state.run_progress)) - 1]
                self._answer(200, {key: value for key, value in run.items() if key != "reads"})
            else:
                self._answer(404, {"message": f"no route {url.path}"})

        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            url = urlsplit(self.path)
            state.requests.append(f"POST {url.path}")
            if not self._authorized():
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            new_id = str(uuid.uuid4())
            if url.path == f"{PREFIX}/pipelines/upload":
                spec = self._uploaded_spec()
                state.pipelines[new_id] = {"pipeline_id": new_id, "display_name": query["name"]}
                state.versions[new_id] = {"pipeline_id": new_id, "pipeline_version_id": new_id, **spec}
                self._answer(200, state.pipelines[new_id])
            elif url.path == f"{PREFIX}/pipelines/upload_version":
                assert query["pipelineid"] in state.pipelines, "a version of an unknown pipeline"
                spec = self._uploaded_spec()
                version = {"pipeline_id": query["pipelineid"], "pipeline_version_id": new_id}
                state.versions[new_id] = {**version, "display_name": query["name"], **spec}
                self._answer(200, {**version, "display_name": query["name"]})
            else:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if url.path == f"{PREFIX}/experiments":
                    state.experiments[new_id] = {
                        "experiment_id": new_id,
                        "display_name": body["display_name"],
                    }
                    self._answer(200, state.experiments[new_id])
                elif url.path == f"{PREFIX}/runs":
                    state.runs[new_id] = {**body, "run_id": new_id, "state": "PENDING"}
                    self._answer(200, state.runs[new_id])
                elif url.path == f"{PREFIX}/recurringruns":
                    state.recurring_runs[new_id] = {**body, "recurring_run_id": new_id, "status": "ENABLED"}
                    self._answer(200, state.recurring_runs[new_id])
                else:
                    self._answer(404, {"message": f"no route {url.path}"})

    return Handler


@contextmanager
def kfp_contract_server(token: str) -> Iterator[tuple[str, KfpState]]:
    """`with kfp_contract_server(token) as (url, state):` the contract server on a free loopback port."""
    state = KfpState(token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
