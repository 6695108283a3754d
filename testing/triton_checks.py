"""Run by tritonclient's own Python (see `triton_client.py`): the calls a user of Triton's client makes, with
its defaults, against the churn model. Prints what each answered as one JSON object. Imports nothing of the
platform."""

import json
import sys

import numpy as np
import tritonclient.grpc as grpc
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

MODEL = "churn"


def outputs(result, names):
    return {name: result.as_numpy(name).tolist() for name in names}


def error(call):
    try:
        call()
    except InferenceServerException as exc:
        return {"status": str(exc.status()), "message": exc.message()}
    return None


def main(http_url, grpc_address, customers):
    ids = np.array(customers, dtype=np.int64)
    names = ["churn_probability", "known", "customer_id"]
    rest, rpc = http.InferenceServerClient(http_url), grpc.InferenceServerClient(grpc_address)
    found = {
        "http_ready": [rest.is_server_live(), rest.is_server_ready(), rest.is_model_ready(MODEL)],
        "grpc_ready": [rpc.is_server_live(), rpc.is_server_ready(), rpc.is_model_ready(MODEL)],
        "http_metadata": rest.get_model_metadata(MODEL),
        "grpc_metadata": rpc.get_model_metadata(MODEL, as_json=True),
    }
    tensor = http.InferInput("customer_id", [len(ids)], "INT64")
    tensor.set_data_from_numpy(ids)  # the default: binary tensor data
    answer = rest.infer(MODEL, [tensor], request_id="http-binary")
    found["http_binary"] = outputs(answer, names) | {"id": answer.get_response()["id"]}
    tensor = http.InferInput("customer_id", [len(ids)], "INT64")
    tensor.set_data_from_numpy(ids, binary_data=False)
    only = [http.InferRequestedOutput("churn_probability", binary_data=False)]
    answer = rest.infer(MODEL, [tensor], outputs=only)
    found["http_json_one_output"] = {
        "names": [o["name"] for o in answer.get_response()["outputs"]],
        **outputs(answer, ["churn_probability"]),
    }
    tensor = grpc.InferInput("customer_id", [len(ids)], "INT64")
    tensor.set_data_from_numpy(ids)  # raw_input_contents, the client's only way
    answer = rpc.infer(MODEL, [tensor], request_id="grpc-raw")
    found["grpc"] = outputs(answer, names) | {"id": answer.get_response().id}
    answer = rpc.infer(MODEL, [tensor], outputs=[grpc.InferRequestedOutput("known")])
    found["grpc_one_output"] = {
        "names": [o.name for o in answer.get_response().outputs],
        **outputs(answer, ["known"]),
    }

    floats = np.array(customers, dtype=np.float32)
    wrong_http = http.InferInput("customer_id", [len(ids)], "FP32")
    wrong_http.set_data_from_numpy(floats)
    wrong_grpc = grpc.InferInput("customer_id", [len(ids)], "FP32")
    wrong_grpc.set_data_from_numpy(floats)
    found["http_wrong_datatype"] = error(lambda: rest.infer(MODEL, [wrong_http]))
    found["grpc_wrong_datatype"] = error(lambda: rpc.infer(MODEL, [wrong_grpc]))
    unknown = [http.InferRequestedOutput("churn")]
    found["http_unknown_output"] = error(lambda: rest.infer(MODEL, [tensor_for(http, ids)], outputs=unknown))
    print(json.dumps(found, default=str))


def tensor_for(module, ids):
    tensor = module.InferInput("customer_id", [len(ids)], "INT64")
    tensor.set_data_from_numpy(ids)
    return tensor


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(value) for value in sys.argv[3:]])
