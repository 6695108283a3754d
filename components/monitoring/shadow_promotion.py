"""Promotion on the shadow: the `challenger` becomes champion when its online answers proved better.

The model servers score a share of requests with the `challenger` version beside the champion, both answers
in the prediction log. Once the labels of those requests' as-of dates are known, the two versions are
compared on the same customers: the requests both answered, a customer asked many times on one as-of date
counted once. The rule is the evaluate step's (`core/model/promotion.py`: ROC AUC higher by at least
`policy.promotion_min_margin`), applied once at least `policy.shadow_promotion_min_labelled` of those
customers churned and as many stayed (0 turns it off). A promotion moves the aliases, alerts `promotion`, and
the servers switch to the new champion at their next check of the alias.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from components.core.alerts import AlertKind, notify
from components.core.model.metrics import classification_metrics
from components.core.model.promotion import PROMOTION_METRIC, move_aliases, promotion_decision
from components.core.model.registry import CHALLENGER, CHAMPION, alias_version, tracking_client
from components.core.results import Promotion
from components.core.settings import Settings
from components.monitoring.performance import Observations, observe, shadow_pairs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowVerdict:
    """The challenger against the champion on the labelled requests both answered, and what was done."""

    champion_version: str
    challenger_version: str
    #: distinct customers (per as-of date) both versions answered whose label is known, and how many churned
    customers: int
    churned: int
    champion_roc_auc: float | None
    challenger_roc_auc: float | None
    promoted: bool
    reason: str


def judge_shadow(
    settings: Settings, apply: bool = True, observed: Observations | None = None
) -> ShadowVerdict | None:
    """Compare the challenger with the champion on their logged answers; promote it when it won (unless
    `apply` is false). None when there is no challenger (or it is the champion's version).

    Args:
        observed: the log and the labels as `performance.observe` read them already (read here when needed).
    """
    client = tracking_client(settings)
    champion = alias_version(client, settings.model_name, CHAMPION)
    challenger = alias_version(client, settings.model_name, CHALLENGER)
    if champion is None or challenger is None or champion == challenger:
        return None
    labelled = _labelled_pairs(observed or observe(settings), champion, challenger)
    churned = int(labelled["is_churned"].sum()) if not labelled.empty else 0
    stayed = len(labelled) - churned
    needed = settings.policy.shadow_promotion_min_labelled

    def verdict(promoted: bool, reason: str, scores: tuple[float, float] | None = None) -> ShadowVerdict:
        ours, theirs = scores or (None, None)
        return ShadowVerdict(champion, challenger, len(labelled), churned, ours, theirs, promoted, reason)

    if not needed:
        return verdict(False, "promotion on the shadow is off (shadow_promotion_min_labelled = 0)")
    if min(churned, stayed) < needed:
        return verdict(
            False,
            f"{len(labelled)} labelled customers answered by both versions ({churned} churned, {stayed} "
            f"stayed): fewer than {needed:g} of each to judge the challenger on",
        )
    y = labelled["is_churned"].astype(int).to_numpy()
    champion_score = classification_metrics(y, labelled["probability"].to_numpy())[PROMOTION_METRIC]
    challenger_score = classification_metrics(y, labelled["probability_challenger"].to_numpy())[
        PROMOTION_METRIC
    ]
    decision, reason = promotion_decision(
        challenger,
        champion,
        challenger_score,
        champion_score,
        settings.policy.promotion_min_margin,
        where=f"online, on the same {len(labelled)} labelled customers",
    )
    promoted = decision is Promotion.PROMOTED
    if promoted and apply:
        move_aliases(client, settings.model_name, challenger, decision)
        log.info("challenger promoted: %s", reason)
        notify(
            settings,
            AlertKind.PROMOTION,
            f"{settings.model_name} version {challenger} promoted from challenger: {reason}",
            model_version=challenger,
            replaced_version=champion,
            customers=len(labelled),
        )
    return verdict(promoted, reason, (champion_score, challenger_score))


def _labelled_pairs(observed: Observations, champion: str, challenger: str) -> pd.DataFrame:
    """Requests both versions answered (known customers), one row per customer and as-of date, with labels."""
    empty = pd.DataFrame(columns=["probability", "probability_challenger", "is_churned"])
    logged, labels = observed.logged, observed.labels
    if logged is None or labels is None:
        return empty
    pairs = shadow_pairs(logged)
    pairs = pairs[
        (pairs["model_version"] == champion)
        & (pairs["model_version_challenger"] == challenger)
        & pairs["features_as_of"].notna()
    ]
    if pairs.empty:
        return empty
    pairs = pairs.sort_values("logged_at").drop_duplicates(["customer_id", "features_as_of"], keep="last")
    pairs = pairs.rename(columns={"features_as_of": "as_of_ts"})
    return pairs.merge(labels, on=["customer_id", "as_of_ts"], how="inner")
