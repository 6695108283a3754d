"""Stage 9, reporting: the run report, an HTML page of what the run did (`report.py`), and its KFP component
(`component.py`)."""
