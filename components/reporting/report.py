"""Report step: one HTML page per run: data volumes, dbt tests, the model, promotion, scores, drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from components.core.results import Drift, Evaluation, Scores, TrainedModel, Transformation
from components.core.settings import Settings

_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:70em}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}td:first-child,th:first-child"
    "{text-align:left}.warn{background:#fff3cd;padding:.5em;border:1px solid #e0c060}.flag{color:#b00}"
)


def layer_volumes(settings: Settings, snapshot_ids: Mapping[str, int | None]) -> list[dict[str, Any]]:
    """Rows of each `layer.table` at the given snapshot, from the snapshot's summary (no data is read); None
    for a table with no snapshot or dropped since (the page says so rather than failing the run)."""
    from pyiceberg.exceptions import NoSuchTableError

    from components.core.catalog import get_catalog

    catalog = get_catalog(settings)
    volumes = []
    for identifier in sorted(
        snapshot_ids, key=lambda ident: (_LAYER_ORDER.get(ident.split(".")[0], 9), ident)
    ):
        snapshot_id = snapshot_ids[identifier]
        rows = None
        try:
            table = catalog.load_table(identifier) if snapshot_id is not None else None
        except NoSuchTableError:
            table = None
        if table is not None:
            snapshot = table.snapshot_by_id(int(snapshot_id))
            if snapshot is not None and snapshot.summary is not None:
                rows = int(snapshot.summary.get("total-records", 0))
        volumes.append({"table": identifier, "rows": rows, "snapshot_id": snapshot_id})
    return volumes


_LAYER_ORDER = {"bronze": 0, "silver": 1, "gold": 2}


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], flagged: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = ' class="flag"' if index < len(flagged) and flagged[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def _metrics_side_by_side(promotion: Evaluation) -> str:
    candidate, champion = promotion.candidate_metrics, promotion.champion_metrics
    previous = promotion.previous_champion_version
    header = ["metric", f"candidate v{promotion.model_version}"]
    if champion is not None and previous is not None:
        header.append(f"champion v{previous}")
    rows = [
        [name, value] + ([champion[name]] if len(header) == 3 else []) for name, value in candidate.items()
    ]
    return _table(header, rows)


def render_report(
    *,
    profile: str,
    volumes: Sequence[Mapping[str, Any]],
    transform: Transformation,
    training_set: Mapping[str, Any],
    trained: TrainedModel,
    promotion: Evaluation,
    scores: Scores,
    drift: Drift,
) -> str:
    """The run report as a standalone HTML page (no scripts, no external files)."""
    parts = [f"<h1>churn-training run, profile {escape(profile)}</h1>"]
    parts.append(f"<p>Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>")
    if drift.warning:
        parts.append(f'<p class="warn">&#9888; {escape(drift.warning)}</p>')
    parts.append("<h2>Data volumes per layer</h2>")
    parts.append(
        _table(
            ["table", "rows", "snapshot id"],
            [[v["table"], v["rows"], str(v["snapshot_id"])] for v in volumes],
        )
    )
    dbt_tests = transform.dbt_tests or {}
    parts.append("<h2>dbt build</h2>")
    parts.append(
        _table(
            ["invocation", "target", "models", "tests passed", "warned", "failed", "unit tests passed"],
            [
                [
                    transform.dbt_invocation_id,
                    transform.target,
                    transform.models,
                    dbt_tests.get("tests_passed"),
                    dbt_tests.get("tests_warned"),
                    dbt_tests.get("tests_failed"),
                    dbt_tests.get("unit_tests_passed"),
                ]
            ],
        )
    )
    if dbt_tests.get("not_passed"):
        parts.append(
            _table(["test", "status", "failures"], [list(t.values()) for t in dbt_tests["not_passed"]])
        )
    parts.append("<h2>Training set and model</h2>")
    parts.append(
        _table(
            ["feature service", "rows", "first as-of", "last as-of", "model version", "MLflow run"],
            [
                [
                    training_set.get("feature_service"),
                    training_set.get("rows"),
                    training_set.get("first_as_of"),
                    training_set.get("last_as_of"),
                    trained.model_version,
                    trained.run_id,
                ]
            ],
        )
    )
    parts.append("<h2>Promotion</h2>")
    parts.append(f"<p><b>{escape(promotion.decision.value)}</b>: {escape(promotion.reason)}</p>")
    parts.append(_metrics_side_by_side(promotion))
    parts.append("<h2>Batch scores</h2>")
    parts.append(
        _table(
            ["table", "as-of", "customers", "mean probability", "model version", "snapshot id"],
            [
                [
                    scores.table,
                    scores.as_of,
                    scores.customers,
                    scores.mean_probability,
                    scores.model_version,
                    str(scores.snapshot_id),
                ]
            ],
        )
    )
    parts.append("<h2>Drift against the training window</h2>")
    parts.append(
        f"<p>{escape(drift.as_of)} against {escape(drift.reference_start)}..{escape(drift.reference_end)}; "
        f"a column drifts when its PSI exceeds {drift.psi_threshold}. Table {escape(drift.table)}.</p>"
    )
    columns = drift.columns
    parts.append(
        _table(
            [
                "column",
                "kind",
                "PSI",
                "KS",
                "NULL share (train)",
                "NULL share (now)",
                "mean (train)",
                "mean (now)",
            ],
            [
                [
                    c["column_name"],
                    c["kind"],
                    c["psi"],
                    c["ks_statistic"],
                    c["null_share_reference"],
                    c["null_share_current"],
                    c["mean_reference"],
                    c["mean_current"],
                ]
                for c in columns
            ],
            flagged=[c["is_drifted"] for c in columns],
        )
    )
    head = f"<meta charset='utf-8'><title>churn-training run</title><style>{_STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"
