"""KServe model `churn`: the MLflow champion scores customers on features from Feast's online store."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kserve
from kserve.logging import logger

from components.core.feature_contract import STRING_FEATURES
from components.core.settings import FEATURE_SERVICE, SERVED_MODEL_NAME, Settings, get_settings
from serving import metrics
from serving.online_features import OnlineStoreUnavailable, store_errors
from serving.prediction_log import PredictionLog, Scored, Shadow
from serving.protocol import (
    V2_INPUT,
    V2_INPUT_DATATYPE,
    V2_OUTPUTS,
    ChurnScores,
    ScoringRequest,
    parse,
    request_id,
    to_v1,
    to_v2,
)
from serving.scoring import PipelineScorer


@dataclass(frozen=True)
class ServedChampion:
    """One registry version as served: its pipeline, version and scorer, swapped together."""

    pipeline: Any
    version: str
    scorer: PipelineScorer | None = None


class ModelLoadError(RuntimeError):
    """Raised when the champion model or the online features it needs cannot be loaded."""


class ChurnModel(kserve.Model):
    """Churn probability of customers, by id, from the champion of the registered churn model.

    Args:
        settings: Where the MLflow registry and the Feast store live (default: `get_settings()`).
        name: The served model name, the `<name>` of `/v1/models/<name>:predict`.
    """

    #: The Open Inference Protocol's `platform`: the framework, then the format it is stored in.
    platform = "sklearn_mlflow"

    def __init__(self, settings: Settings | None = None, name: str = SERVED_MODEL_NAME):
        super().__init__(name)
        self.settings = settings or get_settings()
        self.champion: ServedChampion | None = None
        self.features: Any = None
        #: This process's prediction log (None when `prediction_log_spool` is empty).
        self.prediction_log: PredictionLog | None = None
        #: The `challenger` version, scored beside the champion for `policy.shadow_share` of the requests,
        #: off the request path (None when there is none, it is the champion, or it cannot be served).
        self.challenger: ServedChampion | None = None
        #: the version the `challenger` alias pointed at when last looked at (served or not): a version that
        #: cannot be served is tried again only once the alias moves
        self._challenger_alias: str | None = None

    @property
    def model_version(self) -> str | None:
        """The registry version served now."""
        return self.champion.version if self.champion else None

    @property
    def pipeline(self) -> Any:
        return self.champion.pipeline if self.champion else None

    @property
    def scorer(self) -> PipelineScorer | None:
        return self.champion.scorer if self.champion else None

    @property
    def versions(self) -> list[str]:
        """The registry version served (one), as the protocol's model metadata lists it."""
        return [self.model_version] if self.model_version else []

    def load(self) -> bool:
        """Load `models:/<model_name>@champion` from MLflow and open the Feast online store."""
        pipeline, version = self._load_champion()
        self.champion = ServedChampion(pipeline, version)
        self.challenger = self._load_challenger()
        self._open_in_this_process()
        self.ready = True
        return self.ready

    def _open_in_this_process(self) -> None:
        """Open the online store and build the scorers: what a model server process needs of its own."""
        self.features = self._open_online_features()
        self.champion = self._served(self.champion.pipeline, self.champion.version)
        self.challenger = self._served_challenger(self.challenger)
        self.prediction_log = self._open_prediction_log()
        self._show_versions()

    def _show_versions(self) -> None:
        """The versions served, as the `lakehouse_model_version` gauge of this process (0: no challenger)."""
        series = metrics.series()
        for role, served in (("champion", self.champion), ("challenger", self.challenger)):
            series.version.labels(role).set(int(served.version) if served and served.version.isdigit() else 0)

    def _load_challenger(self) -> ServedChampion | None:
        """The `challenger` version, unscored yet; None when there is none or it is the champion's version.
        One that cannot be loaded is left out, logged and alerted: the champion is served all the same."""
        from components.core.model.registry import CHALLENGER, load_alias

        if not self.settings.policy.shadow_share or not self.settings.prediction_log_spool:
            return None  # a shadow's answers go nowhere but the prediction log
        try:
            found = load_alias(self.settings, CHALLENGER)
        except Exception as exc:  # noqa: BLE001 - whatever stops the challenger must not stop the champion
            self._challenger_failed(f"cannot be loaded: {exc}")
            return None
        self._challenger_alias = found[1] if found else None
        if found is None or found[1] == self.model_version:
            return None
        return ServedChampion(*found)

    def _served_challenger(self, challenger: ServedChampion | None) -> ServedChampion | None:
        if challenger is None:
            return None
        try:
            return self._served(challenger.pipeline, challenger.version)
        except Exception as exc:  # noqa: BLE001 - a challenger the online features cannot feed is left out
            self._challenger_failed(f"version {challenger.version} cannot be served: {exc}")
            return None

    def _challenger_failed(self, reason: str, count: int = 1) -> None:
        """Log and alert (the first time) that the challenger is not scored; the champion is unaffected."""
        from components.core.alerts import AlertKind, notify

        summary = f"shadow challenger of {self.settings.model_name} {reason}"
        logger.warning("process %d: %s", os.getpid(), summary)
        if count == 1:
            notify(self.settings, AlertKind.SHADOW_FAILED, summary, process=os.getpid())

    def _open_prediction_log(self) -> PredictionLog | None:
        from components.core.prediction_log import segment_store

        if not self.settings.prediction_log_spool:
            return None
        return PredictionLog(
            Path(self.settings.prediction_log_spool),
            segment_store(self.settings),
            rotate_seconds=self.settings.policy.prediction_log_rotate_seconds,
            on_shadow_failure=lambda exc, count: self._challenger_failed(
                f"failed to score a request: {exc}", count
            ),
        )

    def close_log(self) -> None:
        """Write out and seal this process's prediction log: what a stopping server process does last."""
        if self.prediction_log is not None:
            self.prediction_log.close()

    def _served(self, pipeline: Any, version: str) -> ServedChampion:
        """`pipeline` with a scorer on the online store's features; raises if it needs others."""
        expected = tuple(getattr(pipeline, "feature_names_in_", self.features.feature_names))
        missing = sorted(set(expected) - set(self.features.feature_names))
        if missing:
            raise ModelLoadError(
                f"{self.settings.model_name} version {version} expects features that "
                f"{FEATURE_SERVICE} does not serve: {', '.join(missing)}"
            )
        return ServedChampion(pipeline, version, PipelineScorer(pipeline, expected, STRING_FEATURES))

    def refresh_champion(self) -> bool:
        """Serve the version the `champion` alias points at now, if it moved; True when it switched.

        The new version is loaded and checked beside the served one, then both are swapped in one
        assignment: a request in flight finishes with the version it started with, the next one gets the
        new version. When the alias is gone or the new version cannot be served, the current one stays.
        """
        from components.core.model.registry import CHALLENGER, CHAMPION, alias_version, tracking_client

        client = tracking_client(self.settings)
        wanted = alias_version(client, self.settings.model_name, CHAMPION)
        switched = wanted is not None and wanted != self.model_version
        if switched:
            pipeline, version = self._load_champion()
            self.champion = self._served(pipeline, version)
            logger.info("process %d now serves %s version %s", os.getpid(), self.settings.model_name, version)
        shadow = alias_version(client, self.settings.model_name, CHALLENGER)
        if shadow != self._challenger_alias or switched:
            self.challenger = self._served_challenger(self._load_challenger())
            self._challenger_alias = shadow
        self._show_versions()
        return switched

    def reopen(self) -> None:
        """Open the online store and build the scorer again, for a worker process forked from this one.

        A SQLite connection or Redis client must not be shared across processes; the loaded pipeline and
        its version are, so every worker serves the version this process loaded. The prediction log is the
        worker's own (the parent's copy, with no thread here, is left alone).
        """
        self._open_in_this_process()

    def get_input_types(self) -> list[dict[str, Any]]:
        """The protocol's input tensor: `customer_id`, INT64, any number of ids."""
        return [{"name": V2_INPUT, "datatype": V2_INPUT_DATATYPE, "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        """The output tensors, in response order (see `serving.protocol.to_v2`)."""
        return [{"name": name, "datatype": datatype, "shape": [-1]} for name, datatype in V2_OUTPUTS]

    def _load_champion(self) -> tuple[Any, str]:
        from components.core.model.registry import NoChampionError, load_champion

        try:
            # the resolved version is loaded, so the version reported is the one served if the alias moves
            return load_champion(self.settings)
        except NoChampionError as exc:
            raise ModelLoadError(str(exc)) from exc

    def _open_online_features(self) -> Any:
        from feast.errors import FeatureServiceNotFoundException

        from components.core.feature_store import get_store
        from serving.online_features import OnlineFeatureReader

        try:
            return OnlineFeatureReader(get_store(self.settings), FEATURE_SERVICE)
        except FeatureServiceNotFoundException as exc:
            raise ModelLoadError(
                f"feature service {FEATURE_SERVICE!r} is not in the Feast registry "
                f"{self.settings.feast_registry}: run the features step first"
            ) from exc

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> ScoringRequest:
        """Validate a V1 dict or V2 `InferRequest` into customer ids; bad input raises `InvalidInput`."""
        return parse(payload)

    def predict(self, payload: ScoringRequest, headers: dict[str, str] | None = None) -> ChurnScores:
        """Look up each customer's online features and score the known ones.

        Raises:
            OnlineStoreUnavailable: the online store cannot be read now (HTTP 503, gRPC UNAVAILABLE).
        """
        champion = self.champion  # one version for the whole request, even if a switch happens meanwhile
        started = time.perf_counter()
        try:
            rows, known, as_of = self.features.read_stamped(payload.customer_ids)
        except store_errors() as exc:
            metrics.store_read(time.perf_counter() - started, 0, 0)
            raise OnlineStoreUnavailable(self.settings.feast_online_store, exc) from exc
        unknown = known.count(False)
        metrics.store_read(time.perf_counter() - started, len(known) - unknown, unknown)
        probabilities = [float("nan")] * len(rows)
        scored = [index for index, is_known in enumerate(known) if is_known]
        if scored:
            values = champion.scorer.predict([rows[index] for index in scored])
            for index, value in zip(scored, values.tolist(), strict=True):
                probabilities[index] = value
        return ChurnScores(
            payload, probabilities, known, model_version=champion.version, rows=rows, as_of=as_of
        )

    def postprocess(self, result: ChurnScores, headers: dict[str, str] | None = None) -> Any:
        """V1 dict or V2 `InferResponse`, matching the request; the answer is queued for the log."""
        response_id = ""  # a V1 answer carries none; a V2 one gets the request's or a new one in to_v2
        if self.prediction_log is not None:
            response_id = request_id(result, headers)
            self._log(result, response_id)
        if result.request.v2_request is not None:
            return to_v2(result, self.name, result.model_version, response_id)
        return to_v1(result, result.model_version, self.settings.model_name, FEATURE_SERVICE)

    def _log(self, result: ChurnScores, response_id: str) -> None:
        request = result.request
        challenger = self.challenger
        shadow = None
        if challenger is not None and random.random() < self.settings.policy.shadow_share:
            shadow = Shadow(challenger.version, challenger.scorer.predict)
        self.prediction_log.log(
            Scored(
                request_id=response_id,
                logged_at_us=time.time_ns() // 1000,
                model_name=self.settings.model_name,
                model_version=result.model_version,
                role="champion",
                protocol=request.protocol,
                customer_ids=request.customer_ids,
                probabilities=result.probabilities,
                known=result.known,
                rows=result.rows or [{} for _ in request.customer_ids],
                features_as_of=result.as_of or [None for _ in request.customer_ids],
                latency_ms=(time.perf_counter() - request.received) * 1000.0,
                shadow=shadow,
            )
        )
