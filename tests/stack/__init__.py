"""Tests on the real stack services: dbt on Trino, pyiceberg and Trino on one catalog, both engines agree."""
