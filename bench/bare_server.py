"""The reference for the serving benchmark: a bare KServe model server, one worker, nothing but a prediction.

`python -m bench.bare_server --port N`: model `churn` answers the churn server's request shapes (V1
`{"instances": [{"customer_id": 17}]}` and a V2 INT64 input `customer_id`) with the probability of a tiny
scikit-learn logistic regression on 13 in-memory features per customer. No registry, no feature store,
no validation beyond reading the ids: what any KServe model costs on this machine.
"""

from __future__ import annotations

import argparse
import logging
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="HTTP port on 127.0.0.1")
    args = parser.parse_args(argv)
    model = BareModel("churn")
    model.load()
    server = ModelServer(http_port=args.port, workers=1, enable_grpc=False, enable_latency_logging=False)
    for name in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])


if __name__ == "__main__":
    main()
