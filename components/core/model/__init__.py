"""The churn model: its pipeline, time-based split, metrics, figures, drift statistics and registry access."""
