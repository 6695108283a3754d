"""Stage 4, training: the churn model fitted on the time-based split, tracked and registered in MLflow
(`train.py`), and its KFP component (`component.py`)."""
