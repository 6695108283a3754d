"""Tests of the stack scripts in infrastructure/local/."""
