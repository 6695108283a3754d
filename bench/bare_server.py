"""The reference for the serving benchmark: a bare KServe model server, nothing but a prediction.

`python -m bench.bare_server --port N [--workers 2]`: model `churn` answers the churn server's request
shapes (V1 `{"instances": [{"customer_id": 17}]}` and a V2 INT64 input `customer_id`) with the probability
of a tiny scikit-learn logistic regression on 13 in-memory features per customer. No registry, no feature
store, no validation beyond reading the ids, KServe's own routes: what any KServe model costs here.
"""

from __future__ import annotations

import argparse
import logging
import socket
from typing import Any

import numpy as np
from kserve import Model, ModelServer
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

FEATURES = 13
CUSTOMERS = 5000


class BareModel(Model):
    """Probability of a logistic regression fitted on random rows, for customers 1..`CUSTOMERS`."""

    def load(self) -> bool:
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(0)
        rows = rng.normal(size=(2000, FEATURES))
        self.classifier = LogisticRegression().fit(rows, rows[:, 0] + rng.normal(size=2000) > 0)
        self.features = {cid: rng.normal(size=FEATURES) for cid in range(1, CUSTOMERS + 1)}
        self.ready = True
        return True

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            ids = [int(v) for v in payload.inputs[0].data]
        else:
            ids = [i["customer_id"] if isinstance(i, dict) else i for i in payload["instances"]]
        rows = np.array([self.features.get(cid, np.zeros(FEATURES)) for cid in ids])
        probabilities = self.classifier.predict_proba(rows)[:, 1].tolist()
        if isinstance(payload, InferRequest):
            output = InferOutput(
                name="churn_probability", shape=[len(ids)], datatype="FP64", data=probabilities
            )
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output])
        pairs = zip(ids, probabilities, strict=True)
        return {"predictions": [{"customer_id": c, "churn_probability": p} for c, p in pairs]}


def serve(model: BareModel, port: int, workers: int) -> None:
    """Serve `model` on 127.0.0.1:`port` from `workers` processes, forked once it is loaded and listening on
    the same port (SO_REUSEPORT), as the churn server's workers are: the two differ in what a request does,
    not in how processes share the connections."""
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    from serving.workers import fork_worker, listening_socket, stop_workers

    server = ModelServer(http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False)
    server.register_model(model)

    def run(sock: socket.socket) -> None:
        rest = RESTServer(
            FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, port
        )
        rest.config.access_log = False
        rest.create_application()
        for name in ("uvicorn.access", "kserve.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
        rest._server.run(sockets=[sock])

    first = listening_socket("127.0.0.1", port, shared=True)

    def worker() -> None:
        first.close()
        run(listening_socket("127.0.0.1", port, shared=True))

    pids = [fork_worker(worker) for _ in range(workers - 1)]
    try:
        run(first)
    finally:
        stop_workers(pids)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="HTTP port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=2, help="HTTP processes")
    args = parser.parse_args(argv)
    model = BareModel("churn")
    model.load()
    serve(model, args.port, args.workers)


if __name__ == "__main__":
    main()
