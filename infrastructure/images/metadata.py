"""The images Kubeflow Pipelines' metadata needs here: the ML Metadata server (`infrastructure/metadata/`) and
MariaDB, the database of that server and of KFP's API server."""

from __future__ import annotations

from infrastructure.images.recipes import REPO_ROOT, SERVICES, ImageRecipe


def metadata_recipes() -> list[ImageRecipe]:
    return [
        ImageRecipe(
            "metadata",
            "localhost/ml-metadata-server:1.17.1",
            SERVICES / "metadata" / "Dockerfile",
            lambda cache, log: REPO_ROOT,  # it copies the server and its requirements from the repository
            "ML Metadata's gRPC service (and gRPC-Web) on ml-metadata 1.17.1's store; user 10001",
            "gcr.io/tfx-oss-public/ml_metadata_store_server",
        ),
        ImageRecipe(
            "mariadb",
            "localhost/mariadb:10.11-bookworm",
            SERVICES / "mariadb" / "Dockerfile",
            lambda cache, log: SERVICES / "mariadb",
            "Debian's MariaDB 10.11 with the mysql image's entry point contract; user 10001",
            "gcr.io/ml-pipeline/mysql",
        ),
    ]
