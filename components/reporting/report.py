"""Report step: one HTML page per run: data volumes, dbt tests, the model, promotion, scores, drift, and the
quality of past predictions once their labels are known."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from components.core.results import Drift, Evaluation, Performance, Scores, TrainedModel, Transformation
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
    performance: Performance | None = None,
) -> str:
    """The run report as a standalone HTML page (no scripts, no external files)."""
    parts = [f"<h1>churn-training run, profile {escape(profile)}</h1>"]
    parts.append(f"<p>Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>")
    for warning in (drift.warning, performance.warning if performance else None):
        if warning:
            parts.append(f'<p class="warn">&#9888; {escape(warning)}</p>')
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
                    c["kind"] + (", drifts by construction" if c.get("drift_expected") else ""),
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
    if performance is not None:
        parts.append(_quality_section(performance))
        if performance.shadow:
            parts.append(_shadow_section(performance.shadow))
    head = f"<meta charset='utf-8'><title>churn-training run</title><style>{_STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def _quality_section(performance: Performance) -> str:
    """Realised quality per as-of date, version, source and role: a chart of ROC AUC against each version's
    holdout figure, then the table of `gold.model_performance`."""
    parts = ["<h2>Quality once the labels are known</h2>"]
    groups = sorted(performance.groups, key=lambda g: (g["as_of_ts"], g["model_version"], g["source"]))
    if not groups:
        parts.append(
            "<p>No past prediction has its 30-day label window closed yet: batch scores and logged online "
            f"answers are measured here once it has. Table {escape(performance.table)}.</p>"
        )
        return "".join(parts)
    parts.append(
        f"<p>Predictions of each as-of date against what happened in the 30 days after it; a group whose "
        f"ROC AUC is more than {performance.max_roc_auc_drop:g} below its version's holdout figure is "
        f"flagged. Table {escape(performance.table)}.</p>"
    )
    parts.append(_roc_auc_chart(groups))
    header = ["as-of", "version", "source", "role", "predictions", "churned", "ROC AUC", "holdout ROC AUC"]
    header += ["PR AUC", "Brier", "calibration error"]
    rows = [
        [
            g["as_of_ts"][:10],
            g["model_version"],
            g["source"],
            g["role"],
            g["predictions"],
            g["churned"],
            g["roc_auc"],
            g["holdout_roc_auc"],
            g["pr_auc"],
            g["brier_score"],
            g["calibration_error"],
        ]
        for g in groups
    ]
    parts.append(_table(header, rows, flagged=[g["is_degraded"] for g in groups]))
    return "".join(parts)


_SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _roc_auc_chart(groups: Sequence[Mapping[str, Any]], width: int = 640, height: int = 240) -> str:
    """An inline SVG: realised ROC AUC per as-of date, one line per (version, source, role), each version's
    holdout ROC AUC dashed in the same colour; the axis spans 0.5 (chance) to 1."""
    dates = sorted({g["as_of_ts"][:10] for g in groups})
    series: dict[tuple, list[tuple[int, float]]] = {}
    holdout: dict[tuple, float] = {}
    for g in groups:
        if g["roc_auc"] is None:
            continue
        key = (g["model_version"], g["source"], g["role"])
        series.setdefault(key, []).append((dates.index(g["as_of_ts"][:10]), g["roc_auc"]))
        if g["holdout_roc_auc"] is not None:
            holdout[key] = g["holdout_roc_auc"]
    left, top, right, bottom = 50, 10, width - 170, height - 30

    def x(index: int) -> float:
        return left + (right - left) * (index / max(len(dates) - 1, 1))

    def y(value: float) -> float:
        return bottom - (bottom - top) * (min(max(value, 0.5), 1.0) - 0.5) / 0.5

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    svg.append("<title>realised ROC AUC per as-of date against the holdout figure</title>")
    for tick in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        svg.append(
            f'<line x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.1f}</text>'
        )
    for index in sorted({0, len(dates) - 1}):
        svg.append(
            f'<text x="{x(index):.1f}" y="{bottom + 18}" font-size="11" text-anchor="middle">'
            f"{escape(dates[index])}</text>"
        )
    for number, (key, points) in enumerate(sorted(series.items())):
        colour = _SERIES_COLOURS[number % len(_SERIES_COLOURS)]
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in sorted(points))
        svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        svg.extend(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for i, v in sorted(points)
        )
        if key in holdout:
            level = y(holdout[key])
            svg.append(
                f'<line x1="{left}" x2="{right}" y1="{level:.1f}" y2="{level:.1f}" stroke="{colour}" '
                'stroke-dasharray="4 3"/>'
            )
        label = f"v{key[0]} {key[1]} {key[2]}"
        svg.append(
            f'<text x="{right + 10}" y="{top + 14 + 16 * number}" font-size="12" fill="{colour}">'
            f"{escape(label)}</text>"
        )
    svg.append("</svg>")
    return "".join(svg)


def _shadow_section(shadow: Mapping[str, Any]) -> str:
    """The challenger beside the champion on the same logged requests: agreement and score distributions
    (their quality once labels are known is in the quality table, role `challenger`)."""
    parts = ["<h2>Shadow challenger online</h2>"]
    agreement, difference = shadow["agreement"], shadow["mean_abs_difference"]
    parts.append(
        f"<p>{shadow['pairs']:,} answers of both on the same requests: they agree on {agreement:.1%} (same "
        f"side of 0.5); their probabilities differ by {difference:.4f} on average. Their quality once the "
        "labels are known: the rows of role <i>challenger</i> above.</p>"
    )
    rows = [
        [role, ", ".join(map(str, shadow[role]["versions"])), shadow[role]["mean"]]
        + [shadow[role][q] for q in ("p10", "p50", "p90")]
        for role in ("champion", "challenger")
    ]
    parts.append(_table(["role", "version", "mean probability", "p10", "p50", "p90"], rows))
    return "".join(parts)
