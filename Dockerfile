# The one image of the platform: the KFP components, the model server, MLflow, Feast's feature server and the
# Polaris setup Job run in it. The repository installed from its lock file; runs as a non-root user.
#   make image            (docker build -t "$(lakehouse settings image)" .)

FROM python:3.11.14-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
# the dependencies first (this layer changes only with the lock file), then the project itself
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY components/ components/
COPY pipelines/ pipelines/
COPY serving/ serving/
COPY feature_repo/ feature_repo/
COPY dbt/ dbt/
# the source files the ingest step loads (`lakehouse data generate`); a real deployment reads its own sources
COPY data/ data/
COPY infrastructure/__init__.py infrastructure/__init__.py
COPY infrastructure/cluster/ infrastructure/cluster/
RUN uv sync --locked --no-dev

FROM python:3.11.14-slim-bookworm
RUN groupadd --gid 10001 lakehouse \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin lakehouse
COPY --from=build /app /app
WORKDIR /app
# state (dbt target, Feast and kfp scratch files) goes under /tmp, which is writable with a read-only root
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp LAKEHOUSE_HOME=/tmp/lakehouse
USER 10001:10001
EXPOSE 8080
CMD ["python", "-m", "serving.server", "--profile", "cluster", "--host", "0.0.0.0", "--port", "8080"]
