# The one image of the platform: the KFP components, the model server, MLflow, Feast's feature server and the
# Polaris setup Job run in it. The repository installed from its lock file; runs as a non-root user.
#   make image            (docker build -t "$(lakehouse settings image)" .)
#   make images           (BuildKit here, no registry: BASE_IMAGE is a Debian bookworm built by debootstrap)
# BASE_IMAGE: any Debian bookworm with Python 3.11 as `python3`; both stages use it, so the interpreter the
# virtual environment links to (/usr/local/bin in the slim image, /usr/bin in Debian's) is there at run time.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
# Where the network re-signs TLS, the build host's CA bundle comes in as the optional build secret `ca-bundle`
# (`make images` passes it): mounted for the steps that download, never stored in a layer.
# uv in an environment of its own: Debian's system Python refuses `pip install` outside one (PEP 668)
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir uv==0.13.8
ENV PATH=$PATH:/opt/uv/bin
WORKDIR /app
# the dependencies first (this layer changes only with the lock file), then the project itself
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi \
    && uv sync --locked --no-dev --no-install-project
COPY components/ components/
COPY pipelines/ pipelines/
COPY serving/ serving/
COPY feature_repo/ feature_repo/
COPY dbt/ dbt/
COPY infrastructure/__init__.py infrastructure/__init__.py
COPY infrastructure/cluster/ infrastructure/cluster/
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export SSL_CERT_FILE=/run/secrets/ca-bundle; fi \
    && uv sync --locked --no-dev

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 lakehouse \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin lakehouse
COPY --from=build /app /app
WORKDIR /app
# state (dbt target, Feast and kfp scratch files) goes under /tmp, which is writable with a read-only root; so
# do the export files, which the image never holds (.dockerignore): the ingest step copies them from the
# object store (`sources_uri`), where `lakehouse data upload` puts them
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp LAKEHOUSE_HOME=/tmp/lakehouse \
    LAKEHOUSE_DATA_DIR=/tmp/lakehouse/data
USER 10001:10001
EXPOSE 8080
CMD ["python", "-m", "serving.server", "--profile", "cluster", "--host", "0.0.0.0", "--port", "8080"]
