"""What a step returns: a frozen dataclass read by field, written to its KFP artifact as exact JSON.

A step's result type subclasses `StepResult`; `to_dict()` is what goes into the artifact's file (enums as
their values, nested results as dicts) and `from_dict()` reads it back in the next step or the CLI. The
results one stage hands to another live here, beneath the stages, so a later step (the report, the local
runner) reads an earlier one's by field without importing it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Self


def plain(value: Any) -> Any:
    """`value` with enums as their values and step results as dicts, down through dicts and lists."""
    if isinstance(value, StepResult):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@dataclasses.dataclass(frozen=True)
class StepResult:
    """Base of the steps' results."""

    def to_dict(self) -> dict[str, Any]:
        return {field.name: plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result `to_dict()` gave; a ValueError naming the fields when others are missing or extra."""
        names = {field.name for field in dataclasses.fields(cls)}
        required = {
            field.name
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        }
        missing, extra = sorted(required - set(data)), sorted(set(data) - names)
        if missing or extra:
            raise ValueError(f"not the fields of {cls.__name__}: missing {missing}, unknown {extra}")
        return cls(**data)


class Promotion(enum.StrEnum):
    """What the evaluation decided about the candidate."""

    #: there was no champion: the candidate becomes the first
    FIRST_CHAMPION = "first_champion"
    #: the candidate beat the champion by at least the margin and takes the alias
    PROMOTED = "promoted"
    #: the candidate already holds `champion` (a re-run)
    ALREADY_CHAMPION = "already_champion"
    #: the candidate did not win: the champion stays, the candidate becomes `challenger`
    KEPT_CHAMPION = "kept_champion"

    @property
    def candidate_is_champion(self) -> bool:
        return self is not Promotion.KEPT_CHAMPION


@dataclasses.dataclass(frozen=True)
class Evaluation(StepResult):
    """The decision on a candidate and what it rests on."""

    model_version: int
    decision: Promotion
    #: the candidate holds `champion` afterwards
    promoted: bool
    #: both scores and the gain, with as many decimals as it takes to tell them apart
    reason: str
    #: the version holding `champion` after the decision, and its registry URI
    champion_version: int
    model_uri: str
    previous_champion_version: int | None
    promotion_metric: str
    candidate_roc_auc: float
    #: None without a champion; the gain is the candidate's score minus the champion's
    champion_roc_auc: float | None
    roc_auc_gain: float | None
    #: the setting applied
    min_margin: float
    candidate_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    #: the candidate's holdout window (its run's parameters) and its row count
    holdout: dict[str, str]
    holdout_rows: int
    #: the champion's training labels reach into this window, which favours it: the rule stays the same,
    #: the flag makes it visible
    champion_trained_on_window: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision", Promotion(self.decision))


@dataclasses.dataclass(frozen=True)
class Ingestion(StepResult):
    """What the ingestion loaded into bronze, and from which data."""

    #: the source files' content hash, and DVC's md5 of `data/` when it is tracked
    data_sha256: str
    data_dvc_md5: str | None
    #: dlt's load id (None when nothing was loaded)
    load_id: str | None
    #: rows written per source table (0 when its file held nothing new)
    rows_loaded: dict[str, int]
    #: `bronze.<table>` -> current snapshot id, for the source tables
    snapshots: dict[str, int | None]
    #: the source tables whose export held a header and no rows (loaded as nothing; see `empty_exports`)
    empty_exports: list[str] = dataclasses.field(default_factory=list)
    #: source table -> how many keys had rows that differ but share their latest `updated_at` (the last in
    #: file order loaded; the log names the lines)
    tied_keys: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Transformation(StepResult):
    """What `dbt build` ran and the silver/gold snapshots it left."""

    dbt_invocation_id: str
    target: str
    #: counts of the nodes that ran
    models: int
    tests: int
    #: the bronze snapshots the build read, and `layer.model` -> snapshot id of what it built
    bronze_snapshots: dict[str, int | None]
    published: dict[str, int | None]
    #: the dbt tests' outcome (counts, and the tests that did not pass), when it was read
    dbt_tests: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class FeatureMaterialization(StepResult):
    """What Feast applied and put in the online store."""

    feature_service: str
    feature_views: list[str]
    #: the snapshot of the gold features table the online store was filled from
    gold_snapshot_id: int | None
    materialized_start: str
    materialized_end: str
    online_customers: int | None


@dataclasses.dataclass(frozen=True)
class TrainedModel(StepResult):
    """A fitted model, logged to MLflow and registered."""

    run_id: str
    model_version: int
    model_uri: str
    model_type: str
    #: holdout metrics, and the holdout window (`train_cutoff`, `holdout_start`, `holdout_end`, ISO)
    metrics: dict[str, float]
    holdout: dict[str, str]
    train_rows: int
    holdout_rows: int
    fit_seconds: float
    training_set_hash: str
    #: ROC AUC lost per shuffled feature
    feature_importance: dict[str, float]
    #: the holdout's ROC curve (`fpr`, `tpr`, `thresholds`; at most 101 points) and confusion matrix at 0.5
    holdout_roc: dict[str, list[float]]
    holdout_confusion_matrix: list[list[int]]


@dataclasses.dataclass(frozen=True)
class Deployment(StepResult):
    """Where the champion runs: on the cluster its `InferenceService`, elsewhere the server's answers."""

    model_version: str
    #: on the cluster: `namespace/name`, the image, and how long it took to be Ready
    inference_service: str | None = None
    image: str | None = None
    ready_after_s: float | None = None
    #: elsewhere: the version the server answered with, the manifest written for the cluster and how to
    #: apply it, and the server's answers for a few customers
    served_version: str | None = None
    manifest: str | None = None
    apply_with: str | None = None
    sample_predictions: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Scores(StepResult):
    """The champion's batch scores of the latest as-of date in `gold.churn_scores`."""

    table: str
    snapshot_id: int
    #: False when the stored rows were already the same (no commit)
    committed: bool
    model_name: str
    model_version: int
    as_of: str
    customers: int
    mean_probability: float
    features_snapshot_id: int | None


@dataclasses.dataclass(frozen=True)
class Drift(StepResult):
    """Drift of the latest features and scores against the champion's training window."""

    table: str
    snapshot_id: int
    committed: bool
    model_version: int
    as_of: str
    reference_start: str
    reference_end: str
    psi_threshold: float
    #: the columns whose PSI crossed the threshold, the largest feature PSI and the score's
    drifted: list[str]
    max_feature_psi: float
    score_psi: float
    #: one row per column as written to `gold.feature_drift`
    columns: list[dict[str, Any]]
    #: the warning logged when a column drifted
    warning: str | None


@dataclasses.dataclass(frozen=True)
class Performance(StepResult):
    """How good past predictions were against the labels known now, per as-of date, version, source, role."""

    table: str
    snapshot_id: int
    committed: bool
    #: the ROC AUC a group may lose against its holdout figure before it counts as degraded
    max_roc_auc_drop: float
    #: one row per group as written to `gold.model_performance`
    groups: list[dict[str, Any]]
    #: the degraded groups, e.g. "version 3 online champion 2025-06-02", and the warning logged for them
    degraded: list[str]
    warning: str | None
    #: the shadow challenger beside the champion on the same logged requests (None when it answered none):
    #: `pairs`, `agreement` (same side of 0.5), `mean_abs_difference`, and per role its `versions` and the
    #: `mean`, `p10`, `p50`, `p90` of its probabilities
    shadow: dict[str, Any] | None = None
