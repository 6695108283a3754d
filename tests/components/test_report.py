"""The run report's data volumes: rows per table at the snapshot a step recorded."""

from __future__ import annotations

import pyarrow as pa

from components.core.catalog import get_catalog, snapshot_ids
from components.reporting.report import layer_volumes


def test_volumes_are_read_at_the_recorded_snapshot_and_a_dropped_table_has_none(settings):
    catalog = get_catalog(settings)
    catalog.create_namespace_if_not_exists("bronze")
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    orders = catalog.create_table("bronze.orders", schema=rows.schema)
    orders.append(rows)
    scratch = catalog.create_table("bronze.orders__dbt_tmp", schema=rows.schema)
    scratch.append(rows)
    recorded = snapshot_ids("bronze", settings)
    orders.append(rows)  # a later commit: the report shows the recorded one
    catalog.drop_table("bronze.orders__dbt_tmp")  # dropped after a step recorded it

    volumes = layer_volumes(settings, recorded)
    assert volumes == [
        {"table": "bronze.orders", "rows": 3, "snapshot_id": recorded["bronze.orders"]},
        {"table": "bronze.orders__dbt_tmp", "rows": None, "snapshot_id": recorded["bronze.orders__dbt_tmp"]},
    ]


def _group(as_of: str, version: int, source: str, roc_auc: float | None, degraded: bool = False) -> dict:
    return {
        "as_of_ts": f"{as_of}T00:00:00",
        "model_name": "churn_propensity",
        "model_version": version,
        "source": source,
        "role": "champion",
        "predictions": 120,
        "churned": 30,
        "mean_probability": 0.3,
        "churn_rate": 0.25,
        "roc_auc": roc_auc,
        "pr_auc": 0.6,
        "brier_score": 0.15,
        "calibration_error": 0.05,
        "holdout_roc_auc": 0.84,
        "holdout_pr_auc": 0.6,
        "holdout_brier_score": 0.15,
        "roc_auc_drop": None if roc_auc is None else 0.84 - roc_auc,
        "is_degraded": degraded,
    }


def test_the_quality_section_charts_each_version_and_source_and_flags_a_drop():
    import xml.etree.ElementTree as ET

    from components.core.results import Performance
    from components.reporting.report import _quality_section

    groups = [
        _group("2025-05-05", 2, "batch", 0.83),
        _group("2025-05-12", 2, "batch", 0.81),
        _group("2025-05-12", 2, "online", 0.70, degraded=True),
        _group("2025-05-19", 3, "batch", None),  # one outcome only: no ROC AUC, no point
    ]
    performance = Performance("gold.model_performance", 1, True, 0.05, groups, ["x"], "quality drop")

    html = _quality_section(performance)

    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert [len(line.get("points").split()) for line in lines] == [2, 1]  # v2 batch, v2 online
    labels = [text.text for text in svg.findall("{http://www.w3.org/2000/svg}text")]
    assert "v2 batch champion" in labels and "v2 online champion" in labels
    assert html.count('<tr class="flag">') == 1 and "0.7000" in html


def test_the_quality_section_says_when_no_label_window_has_closed():
    from components.core.results import Performance
    from components.reporting.report import _quality_section

    html = _quality_section(Performance("gold.model_performance", 1, False, 0.05, [], [], None))
    assert "No past prediction has its 30-day label window closed yet" in html and "<svg" not in html


def test_the_shadow_section_compares_the_challenger_with_the_champion():
    from components.reporting.report import _shadow_section

    spread = {"mean": 0.31, "p10": 0.05, "p50": 0.27, "p90": 0.66}
    shadow = {
        "pairs": 1200,
        "agreement": 0.9125,
        "mean_abs_difference": 0.0432,
        "champion": {"versions": ["3"], **spread},
        "challenger": {"versions": ["4"], **spread, "mean": 0.35},
    }
    html = _shadow_section(shadow)
    assert "1,200 answers" in html and "91.2%" in html and "0.0432" in html
    assert "<td>challenger</td><td>4</td><td>0.3500</td>" in html
