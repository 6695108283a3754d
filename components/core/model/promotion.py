"""The promotion rule and the aliases it moves, for the evaluate step (holdout window) and the monitor's
shadow check (the challenger's online answers).

A candidate takes alias `champion` only if its score beats the champion's on the same rows by at least
`policy.promotion_min_margin`, and by more than nothing (a tie keeps the champion); the first registered
model becomes champion. A candidate that does not win holds alias `challenger`.
"""

from __future__ import annotations

from typing import Any

from components.core.model.registry import CHALLENGER, CHAMPION, alias_version
from components.core.results import Promotion

PROMOTION_METRIC = "roc_auc"


def distinct_digits(a: float, b: float, at_least: int = 4) -> int:
    """Fewest decimals (at least `at_least`) at which `a` and `b` print differently; 17 when they are equal.

    Seventeen decimals tell apart any two different doubles in [0, 1], so a message can never show two
    different scores as one number.
    """
    for digits in range(at_least, 17):
        if f"{a:.{digits}f}" != f"{b:.{digits}f}":
            return digits
    return 17


def promotion_decision(
    candidate: str,
    champion: str | None,
    candidate_score: float,
    champion_score: float | None,
    min_margin: float = 0.0,
    where: str = "on the same held-out window",
) -> tuple[Promotion, str]:
    """(decision, reason) for candidate version `candidate` against champion version `champion`.

    The candidate wins when its score is higher than the champion's by at least `min_margin`. The reason
    prints both scores, `where` they were measured and the gain, with as many decimals as it takes to tell
    them apart.
    """
    if champion is None:
        return Promotion.FIRST_CHAMPION, "no champion yet: the first evaluated model becomes champion"
    if champion == candidate:
        return Promotion.ALREADY_CHAMPION, f"version {candidate} already holds alias {CHAMPION}"
    digits = distinct_digits(candidate_score, champion_score)
    gain = candidate_score - champion_score
    scores = (
        f"{PROMOTION_METRIC} {candidate_score:.{digits}f} against champion version {champion}'s "
        f"{champion_score:.{digits}f} {where}: gain {gain:+.{digits}f}"
    )
    if gain > 0 and gain >= min_margin:
        reason = f"{scores}, at least the margin {min_margin:g}: the candidate becomes champion"
        return Promotion.PROMOTED, reason
    if gain == 0:
        return Promotion.KEPT_CHAMPION, f"{scores}: a tie keeps the champion"
    return Promotion.KEPT_CHAMPION, f"{scores}, less than the margin {min_margin:g}: the champion stays"


def move_aliases(client: Any, name: str, candidate_version: str, decision: Promotion) -> None:
    """Point `champion` (or `challenger`) at the candidate; touch nothing that already points right."""
    if decision in (Promotion.FIRST_CHAMPION, Promotion.PROMOTED):
        client.set_registered_model_alias(name, CHAMPION, candidate_version)
        if alias_version(client, name, CHALLENGER) == candidate_version:
            client.delete_registered_model_alias(name, CHALLENGER)
    elif decision is Promotion.KEPT_CHAMPION and alias_version(client, name, CHALLENGER) != candidate_version:
        client.set_registered_model_alias(name, CHALLENGER, candidate_version)
