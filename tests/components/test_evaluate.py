"""Tests of the evaluate step: champion and challenger aliases moved by holdout ROC AUC in a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.core.model.pipeline import PRIOR_BASELINE
from components.core.model.promotion import promotion_decision
from components.core.model.split import TrainingDataError
from components.core.results import Evaluation, Promotion
from components.evaluation.evaluate import evaluate_and_promote
from components.training.train import train_model
from tests.components.test_train import local_mlflow_settings, synthetic_training_frame


@pytest.fixture(scope="module")
def training_frame():
    return synthetic_training_frame()


@pytest.fixture(scope="module")
def mlflow_settings(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        yield local_mlflow_settings(tmp_path_factory, mp, "churn_propensity_evaluate_test")


@pytest.fixture(scope="module")
def baseline(training_frame, mlflow_settings) -> dict:
    """A registered prior-only model: AUC 0.5 on any holdout."""
    return train_model(training_frame, mlflow_settings, model_type=PRIOR_BASELINE)


def _aliases(settings) -> dict[str, str]:
    from mlflow import MlflowClient

    aliases = MlflowClient(settings.mlflow_tracking_uri).get_registered_model(settings.model_name).aliases
    return {alias: str(version) for alias, version in aliases.items()}


def test_champion_moves_only_to_a_strictly_better_model(training_frame, mlflow_settings, baseline, tmp_path):
    import mlflow

    # 1. The first model becomes champion, even a weak one.
    first = evaluate_and_promote(training_frame, baseline.model_version, mlflow_settings)
    assert first.decision is Promotion.FIRST_CHAMPION and first.promoted
    assert first.champion_roc_auc is None and first.candidate_roc_auc == pytest.approx(0.5)
    assert _aliases(mlflow_settings) == {"champion": str(baseline.model_version)}

    # 2. A better model takes champion; both were scored on the candidate's recorded holdout window.
    boosted = train_model(training_frame, mlflow_settings)
    better = evaluate_and_promote(training_frame, boosted.model_version, mlflow_settings)
    assert better.decision is Promotion.PROMOTED and better.promoted
    assert better.previous_champion_version == baseline.model_version
    assert better.candidate_roc_auc > 0.7 and better.champion_roc_auc == pytest.approx(0.5)
    assert better.candidate_roc_auc == pytest.approx(boosted.metrics["roc_auc"])
    assert better.holdout == boosted.holdout
    assert _aliases(mlflow_settings) == {"champion": str(boosted.model_version)}

    # 3. A worse model does not take champion and becomes challenger.
    weak = train_model(training_frame, mlflow_settings, model_type=PRIOR_BASELINE)
    worse = evaluate_and_promote(training_frame, weak.model_version, mlflow_settings)
    assert worse.decision is Promotion.KEPT_CHAMPION and not worse.promoted
    assert worse.champion_version == boosted.model_version
    assert worse.champion_roc_auc == pytest.approx(better.candidate_roc_auc)
    expected = {"champion": str(boosted.model_version), "challenger": str(weak.model_version)}
    assert _aliases(mlflow_settings) == expected

    # The decision is recorded on the candidate's run: metrics, tags and a JSON artifact.
    run = mlflow.MlflowClient(mlflow_settings.mlflow_tracking_uri).get_run(weak.run_id)
    assert run.data.tags["promotion_decision"] == "kept_champion"
    assert run.data.tags["promotion_champion_version"] == str(boosted.model_version)
    assert run.data.metrics["promotion_champion_roc_auc"] == pytest.approx(worse.champion_roc_auc)
    path = mlflow.artifacts.download_artifacts(
        run_id=weak.run_id, artifact_path="promotion/decision.json", dst_path=str(tmp_path)
    )
    recorded = json.loads(Path(path).read_text())
    assert recorded["decision"] == "kept_champion" and recorded["reason"] == worse.reason
    assert Evaluation.from_dict(recorded) == worse
    # Champion and candidate side by side: a figure and a metrics table on the candidate's run.
    listed = {
        a.path
        for a in mlflow.MlflowClient(mlflow_settings.mlflow_tracking_uri).list_artifacts(
            weak.run_id, "promotion"
        )
    }
    assert {"promotion/champion_vs_candidate.png", "promotion/champion_vs_candidate.json"} <= listed

    # 4. Re-running on the same inputs gives the same decisions and moves no alias.
    again = evaluate_and_promote(training_frame, weak.model_version, mlflow_settings)
    assert again == worse
    held = evaluate_and_promote(training_frame, boosted.model_version, mlflow_settings)
    assert held.decision is Promotion.ALREADY_CHAMPION and held.promoted
    assert _aliases(mlflow_settings) == expected
    run = mlflow.MlflowClient(mlflow_settings.mlflow_tracking_uri).get_run(boosted.run_id)
    assert run.data.tags["promotion_decision"] == "promoted"

    # an alert each time the alias moved: the first champion and the better model, not the others
    lines = Path(mlflow_settings.alert_file).read_text(encoding="utf-8").splitlines()
    promotions = [alert for alert in map(json.loads, lines) if alert["kind"] == "promotion"]
    assert [alert["details"]["model_version"] for alert in promotions] == [
        baseline.model_version,
        boosted.model_version,
    ]
    assert promotions[1]["summary"].startswith(
        f"{mlflow_settings.model_name} version {boosted.model_version} is"
    )


def test_a_tie_keeps_the_champion_and_the_margin_is_required():
    decision, reason = promotion_decision("4", "3", 0.8123, 0.8123)
    assert decision is Promotion.KEPT_CHAMPION and "tie keeps the champion" in reason
    assert promotion_decision("4", "3", 0.8124, 0.8123)[0] is Promotion.PROMOTED
    assert promotion_decision("1", None, 0.5, None)[0] is Promotion.FIRST_CHAMPION
    decision, reason = promotion_decision("4", "3", 0.8128, 0.8123, min_margin=0.001)
    assert decision is Promotion.KEPT_CHAMPION and "gain +0.0005, less than the margin 0.001" in reason
    decision, reason = promotion_decision("4", "3", 0.8133, 0.8123, min_margin=0.001)
    assert decision is Promotion.PROMOTED and "0.8133 against champion version 3's 0.8123" in reason


@pytest.mark.parametrize(("candidate", "champion"), [(0.84700001, 0.847), (0.8470000000000002, 0.847)])
def test_the_reason_prints_enough_digits_to_tell_the_scores_apart(candidate, champion):
    decision, reason = promotion_decision("4", "3", candidate, champion)
    assert decision is Promotion.PROMOTED
    shown = reason.split()  # "roc_auc <candidate> against champion version 3's <champion> ..."
    assert float(shown[1]) > float(shown[6]), reason


def test_bad_evaluation_inputs_are_refused(training_frame, mlflow_settings, baseline):
    result = baseline
    before = _aliases(mlflow_settings)
    with pytest.raises(LookupError, match="no registered version 999"):
        evaluate_and_promote(training_frame, 999, mlflow_settings)
    early = training_frame[training_frame["as_of_ts"] < result.holdout["holdout_start"]]
    with pytest.raises(TrainingDataError, match="holdout window .* has 0 row"):
        evaluate_and_promote(early, result.model_version, mlflow_settings)
    with pytest.raises(TrainingDataError, match="missing column.*is_churned"):
        evaluate_and_promote(training_frame.drop(columns="is_churned"), result.model_version, mlflow_settings)
    assert _aliases(mlflow_settings) == before
