"""Tests of the pipeline steps in `components/`."""
