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
