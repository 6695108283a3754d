"""Tests of the churn model server in `serving/`."""
