"""MLflow tracking server for the stack: PostgreSQL backend, artifacts proxied to the S3 bucket."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from infrastructure.local.config import BUCKET, REGION
from infrastructure.local.service import Launch, Service, ServiceError


class MlflowServer(Service):
    """Experiment tracking and the model registry (alias `champion`) in the `stack` profile."""

    name = "mlflow"
    port_variable = "STACK_MLFLOW_PORT"

    @property
    def binary(self) -> Path:
        return Path(sys.executable).parent / "mlflow"

    def launch(self) -> Launch:
        if not self.binary.exists():
            raise ServiceError(
                f"{self.binary} not found: run `make install` to create the virtual environment"
            )
        cfg = self.config
        command = [
            str(self.binary),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        command += ["--backend-store-uri", cfg.pg_url("mlflow")]
        command += ["--serve-artifacts", "--artifacts-destination", f"s3://{BUCKET}/mlflow"]
        env = {
            **os.environ,
            "MLFLOW_S3_ENDPOINT_URL": cfg.s3_endpoint,
            "AWS_ACCESS_KEY_ID": cfg.access_key,
            "AWS_SECRET_ACCESS_KEY": cfg.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # The job runner serves GenAI features the platform does not use; it costs 8 processes.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        return Launch(command=command, env=env, cwd=self.dir)

    def check(self) -> str:
        with urllib.request.urlopen(f"{self.config.mlflow_url}/health", timeout=3) as resp:
            body = resp.read().decode().strip()
        if resp.status != 200:
            raise ServiceError(f"/health answered {resp.status} {body}")
        return f"/health {body}"
