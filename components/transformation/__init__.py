"""Stage 2, transformation: `dbt build` of `dbt/` (bronze -> silver -> gold, tests gating it) and gold
published to Iceberg (`transform.py`), and its KFP component (`component.py`)."""
