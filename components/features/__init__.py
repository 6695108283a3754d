"""Stage 3, features: Feast apply, the online store materialized, point-in-time training sets
(`materialize.py`), and its KFP component (`component.py`)."""
