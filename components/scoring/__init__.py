"""Stage 7, scoring: the champion's churn probability for every customer of the latest as-of date, into
`gold.churn_scores` (`score.py`), and its KFP component (`component.py`)."""
