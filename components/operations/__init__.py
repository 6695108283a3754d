"""Commands that look after the lakehouse outside a pipeline run: `lakehouse maintenance`
(`maintenance.py`) and `lakehouse reset` (`reset.py`)."""
