"""Stage 8, monitoring: drift of each feature and of the score against the champion's training window, into
`gold.feature_drift` (`monitor.py`), and its KFP component (`component.py`)."""
