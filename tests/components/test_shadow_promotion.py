"""Promotion on the shadow (`components/monitoring/shadow_promotion.py`): the challenger's logged answers
against the champion's on the same labelled requests, in a real registry and catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from components.core.settings import Settings

MODEL_NAME = "churn_propensity_shadow"


@dataclass(frozen=True)
class Shadowed:
    settings: Settings
    #: the customers of three as-of dates with their labels, as logged below
    rows: pd.DataFrame


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shadowed]:
    """Versions 1 (champion) and 2 (challenger), labels in gold, and both versions' answers to the same
    requests in the prediction log: version 1's little better than chance, version 2's much better."""
    from testing.champion import register_versions
    from tests.components.conftest import write_synthetic_gold
    from tests.components.test_train import local_mlflow_settings, synthetic_training_frame

    with pytest.MonkeyPatch.context() as patch:
        settings = local_mlflow_settings(tmp_path_factory, patch, MODEL_NAME)
        frame = synthetic_training_frame()
        write_synthetic_gold(settings, frame)
        register_versions(settings, frame, versions=2, champion=1)
        dates = sorted(frame["as_of_ts"].unique())[-8:-5]
        rows = frame[frame["as_of_ts"].isin(dates)].reset_index(drop=True)
        rng = np.random.default_rng(3)
        churned = rows["is_churned"].to_numpy().astype(bool)
        champion = np.clip(np.where(churned, 0.55, 0.45) + rng.normal(0, 0.2, len(rows)), 0, 1)
        challenger = np.clip(np.where(churned, 0.7, 0.3) + rng.normal(0, 0.1, len(rows)), 0, 1)
        _log(settings, rows, champion, challenger)
        yield Shadowed(settings, rows.assign(champion=champion, challenger=challenger))


def _log(settings: Settings, rows: pd.DataFrame, worse: np.ndarray, better: np.ndarray) -> None:
    """Each customer asked once per as-of date, version 1 answering `worse` and version 2 `better`: once
    with version 1 as champion and 2 in the shadow, once the other way round; loaded."""
    from components.core.prediction_log import SEALED_SUFFIX
    from components.ingestion.prediction_log import load_prediction_log
    from testing.predictions import answered

    lines = b""
    arrangements = {
        "request": (("champion", "1", worse), ("challenger", "2", better)),
        "swapped": (("champion", "2", better), ("challenger", "1", worse)),
    }
    for (index, row), (prefix, answers) in (
        (found, arrangement) for found in rows.iterrows() for arrangement in arrangements.items()
    ):
        stamp = pd.Timestamp(row["as_of_ts"]).tz_convert(None).isoformat()
        for role, version, probability in answers:
            lines += answered(
                f"{prefix}-{index}",
                [int(row["customer_id"])],
                model_name=MODEL_NAME,
                model_version=version,
                role=role,
                probabilities=[float(probability[index])],
                features_as_of=[stamp],
            ).lines()
    sealed = Path(settings.prediction_log_uri)
    sealed.mkdir(parents=True, exist_ok=True)
    (sealed / f"shadow{SEALED_SUFFIX}").write_bytes(lines)
    assert load_prediction_log(settings).rows == 4 * len(rows)


@pytest.fixture
def aliases(shadowed: Shadowed) -> Iterator:
    """The registry's client, with `champion` on version 1 and `challenger` on version 2 at the start."""
    from components.core.model.registry import CHALLENGER, CHAMPION, tracking_client

    client = tracking_client(shadowed.settings)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, "1")
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, "2")
    return client


def _aliases(client) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(MODEL_NAME).aliases.items()}


def _counts(shadowed: Shadowed) -> tuple[int, int]:
    churned = int(shadowed.rows["is_churned"].sum())
    return churned, len(shadowed.rows) - churned


def test_a_better_challenger_is_promoted_on_the_same_requests(shadowed: Shadowed, aliases) -> None:
    from components.monitoring.shadow_promotion import judge_shadow

    churned, stayed = _counts(shadowed)
    settings = shadowed.settings.with_policy(shadow_promotion_min_labelled=min(churned, stayed))

    verdict = judge_shadow(settings)

    rows = shadowed.rows
    assert (verdict.customers, verdict.churned) == (len(rows), churned)
    assert verdict.champion_roc_auc == pytest.approx(roc_auc_score(rows["is_churned"], rows["champion"]))
    assert verdict.challenger_roc_auc == pytest.approx(roc_auc_score(rows["is_churned"], rows["challenger"]))
    assert verdict.promoted and "online, on the same" in verdict.reason
    assert _aliases(aliases) == {"champion": "2"}, "the challenger alias goes with the promotion"
    alerts = [json.loads(line) for line in Path(settings.alert_file).read_text().splitlines()]
    promotion = [alert for alert in alerts if alert["kind"] == "promotion"][-1]
    assert promotion["details"]["model_version"] == "2" and promotion["details"]["replaced_version"] == "1"


def test_too_few_labelled_customers_promote_nothing(shadowed: Shadowed, aliases) -> None:
    from components.monitoring.shadow_promotion import judge_shadow

    churned, stayed = _counts(shadowed)
    settings = shadowed.settings.with_policy(shadow_promotion_min_labelled=min(churned, stayed) + 1)

    verdict = judge_shadow(settings)

    assert not verdict.promoted and verdict.challenger_roc_auc is None
    assert f"fewer than {min(churned, stayed) + 1} of each" in verdict.reason
    assert _aliases(aliases) == {"champion": "1", "challenger": "2"}


def test_a_worse_challenger_stays_challenger(shadowed: Shadowed, aliases) -> None:
    from components.core.model.registry import CHALLENGER, CHAMPION
    from components.monitoring.shadow_promotion import judge_shadow

    # the roles the other way round: the champion's answers are the better ones
    aliases.set_registered_model_alias(MODEL_NAME, CHAMPION, "2")
    aliases.set_registered_model_alias(MODEL_NAME, CHALLENGER, "1")
    settings = shadowed.settings.with_policy(shadow_promotion_min_labelled=1)

    verdict = judge_shadow(settings)

    rows = shadowed.rows
    assert verdict.customers == len(rows), "only the requests answered in this arrangement"
    assert verdict.champion_roc_auc == pytest.approx(roc_auc_score(rows["is_churned"], rows["challenger"]))
    assert not verdict.promoted and "less than the margin" in verdict.reason
    assert _aliases(aliases) == {"champion": "2", "challenger": "1"}


def test_a_dry_run_or_the_policy_off_moves_no_alias(shadowed: Shadowed, aliases) -> None:
    from components.monitoring.shadow_promotion import judge_shadow

    decided = judge_shadow(shadowed.settings.with_policy(shadow_promotion_min_labelled=1), apply=False)
    off = judge_shadow(shadowed.settings.with_policy(shadow_promotion_min_labelled=0))

    assert decided.promoted and not off.promoted and "off" in off.reason
    assert _aliases(aliases) == {"champion": "1", "challenger": "2"}


def test_a_check_reads_the_log_and_the_labels_once(shadowed: Shadowed, aliases, monkeypatch) -> None:
    """The quality step and the shadow's judge share what `observe` read: neither reads the prediction log
    or the labels again, and the verdict is the one they reach reading for themselves."""
    from components.monitoring import performance
    from components.monitoring.shadow_promotion import judge_shadow

    settings = shadowed.settings.with_policy(shadow_promotion_min_labelled=1)
    observed = performance.observe(settings)
    assert observed.logged is not None and len(observed.logged) == 4 * len(shadowed.rows)
    read: list[str] = []
    reader = performance.read_columns

    def counted(name: str, *args, **kwargs):
        read.append(name)
        return reader(name, *args, **kwargs)

    monkeypatch.setattr(performance, "read_columns", counted)

    performance.measure_performance(settings, observed)
    verdict = judge_shadow(settings, apply=False, observed=observed)

    assert performance.PREDICTION_LOG not in read and performance.LABELS not in read, read
    assert verdict == judge_shadow(settings, apply=False)
