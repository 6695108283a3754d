"""Open Inference Protocol parts KServe leaves out or gets wrong for a served model.

KServe's data plane answers `GET /v2/models/<name>` with the model's inputs and outputs but no `versions`
and an empty `platform`, calls the server ready whatever its models are, and its gRPC server listens on
every interface, logs a line per call and serves the model repository extension (load and unload by
anyone who can reach the port). Here the data plane adds what the model declares and is ready only while
every model is; the gRPC server uses KServe's own servicer and error mapping (`InvalidInput` ->
INVALID_ARGUMENT) on the configured host, without the per-call log line, and refuses repository calls.
"""

from __future__ import annotations

import time
from concurrent import futures
from typing import Any

import grpc
from grpc import StatusCode
from kserve.constants.constants import MAX_GRPC_MESSAGE_LENGTH
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from serving import metrics
from serving.protocol import shown
from serving.request_guard import REPOSITORY_REFUSED


def _status_of(exc: Exception) -> str:
    """The gRPC status KServe's interceptor turns an exception into."""
    from kserve.errors import InferenceError, InvalidInput, ServerNotLive, ServerNotReady

    if isinstance(exc, (InferenceError, InvalidInput)):
        return "INVALID_ARGUMENT"
    return "UNAVAILABLE" if isinstance(exc, (ServerNotReady, ServerNotLive)) else "INTERNAL"


class MeasuredInference(grpc.aio.ServerInterceptor):
    """Counts and times `ModelInfer` calls by status code, as the request guard does for REST."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.endswith("/ModelInfer") or handler.unary_unary is None:
            return handler
        behaviour = handler.unary_unary

        async def measured(request: Any, context: Any) -> Any:
            started, status = time.perf_counter(), "OK"
            try:
                return await behaviour(request, context)
            except Exception as exc:
                code = context.code()
                status = code.name if code is not None else _status_of(exc)
                raise
            finally:
                metrics.answered("v2-grpc", status, time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class VersionedDataPlane(DataPlane):
    """KServe's data plane, whose model metadata also carries the model's `versions` and `platform`, and
    whose server readiness (`/v2/health/ready`, gRPC ServerReady: what the pod's readiness probe asks) is
    true only while it has models and every one is ready."""

    async def ready(self) -> bool:
        models = self.model_registry.get_models()
        if not models:
            return False
        for name in models:
            if not await self.model_registry.is_model_ready(name):
                return False
        return await super().ready()

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        metadata["versions"] = list(getattr(model, "versions", None) or [])
        metadata["platform"] = getattr(model, "platform", None) or metadata["platform"]
        return metadata


class VersionedServicer(InferenceServicer):
    """KServe's gRPC servicer, answering ModelMetadata with the versions the REST endpoint lists too, and
    refusing the repository extension (UNIMPLEMENTED) as the REST server does (404)."""

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        await context.abort(StatusCode.UNIMPLEMENTED, REPOSITORY_REFUSED)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        await context.abort(StatusCode.UNIMPLEMENTED, REPOSITORY_REFUSED)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        """A `model_version` the server does not serve is NOT_FOUND, not answered by the version it serves."""
        if request.model_version:
            model = self._data_plane.model_registry.get_models().get(request.model_name)
            served = list(getattr(model, "versions", None) or []) if model is not None else []
            if request.model_version not in served:
                await context.abort(
                    StatusCode.NOT_FOUND,
                    f"model {request.model_name!r} version {shown(request.model_version)} is not served "
                    f"here; it serves {', '.join(served) or 'none'}",
                )
        return await super().ModelInfer(request, context)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        metadata = await self._data_plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata.get("versions", []),
            platform=metadata["platform"],
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )


class BoundGRPCServer(GRPCServer):
    """The OIP gRPC service (`inference.GRPCInferenceService`) on `host:port` only.

    Args:
        host: address to bind, e.g. `127.0.0.1`.
        port: gRPC port.
        data_plane: the model server's data plane (shared with REST, so both answer the same).
        model_repository_extension: the model server's repository extension.
        max_message_bytes: largest request message (larger ones fail with RESOURCE_EXHAUSTED).
    """

    def __init__(
        self,
        host: str,
        port: int,
        data_plane: DataPlane,
        model_repository_extension: Any,
        max_message_bytes: int = MAX_GRPC_MESSAGE_LENGTH,
    ):
        super().__init__(port, data_plane, model_repository_extension, kwargs={})
        self._host, self._max_message_bytes = host, max_message_bytes

    async def start(self, max_workers: int) -> None:
        from grpc import aio

        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(ExceptionToStatusInterceptor(), MeasuredInference()),
            options=[
                ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_LENGTH),
                ("grpc.max_receive_message_length", self._max_message_bytes),
            ],
        )
        servicer = VersionedServicer(self._data_plane, self._model_repository_extension)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        address = f"[{self._host}]:{self._port}" if ":" in self._host else f"{self._host}:{self._port}"
        if self._server.add_insecure_port(address) == 0:
            raise OSError(f"cannot bind the gRPC server to {address}")
        await self._server.start()
        await self._server.wait_for_termination()
