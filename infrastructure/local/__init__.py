"""Start, health-check and stop the `stack` services (PostgreSQL, Redis, S3, Trino, MLflow) on loopback."""
