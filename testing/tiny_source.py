"""A tiny e-commerce source: two customers (one with two versions), two products, one store, two orders."""

from __future__ import annotations

from pathlib import Path

from components.sources.ecommerce.settings import COLUMNS

ROWS = {
    "customers": [
        "1,ann@example.com,Ann,Lee,Berlin,DE,bronze,2024-01-01 09:00:00,2024-01-01 09:00:00",
        "1,ann@example.com,Ann,Lee,Hamburg,DE,silver,2024-01-01 09:00:00,2024-03-01 10:00:00",
        "2,bob@example.com,Bob,Roe,Paris,FR,gold,2024-01-02 09:00:00,2024-01-02 09:00:00",
        "2,bob@example.com,Bob,Roe,Paris,FR,gold,2024-01-02 09:00:00,2024-01-02 09:00:00",
    ],
    "products": [
        "10,Lamp,home,Lumo,2500,2024-01-01 00:00:00,2024-01-01 00:00:00",
        "11,Phone,electronics,Fonix,49900,2024-01-01 00:00:00,2024-02-01 00:00:00",
    ],
    "stores": ["100,Web,Berlin,DE,online,2023-01-01 00:00:00,2023-01-01 00:00:00"],
    "orders": [
        "1000,1,100,2024-02-01 12:00:00,placed,2024-02-01 12:00:00",
        "1001,2,100,2024-02-02 12:00:00,delivered,2024-02-05 12:00:00",
    ],
    "order_items": [
        "5000,1000,10,2,2500,0,2024-02-01 12:00:00",
        "5001,1001,11,1,49900,1000,2024-02-05 12:00:00",
    ],
}


def write_source(data_dir: Path, rows: dict[str, list[str]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for table, lines in rows.items():
        header = ",".join(COLUMNS[table])
        (data_dir / f"{table}.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
