"""The images of the metadata service are registered, and every file their Dockerfiles copy is there (nothing
is built here; `tests/node/test_image_keys.py` runs hadolint on their Dockerfiles)."""

from __future__ import annotations

from pathlib import Path

from infrastructure.images.build import select
from infrastructure.images.keys import context_files, copied_sources, ignore_patterns


def copied(short: str, cache: Path) -> set[str]:
    """What the image's build sends from its context (the files its key covers)."""
    [recipe] = select([short])
    context = recipe.stage(cache, lambda line: None)
    sources = copied_sources(recipe.dockerfile.read_text())
    files = context_files(context, sources, ignore_patterns(context / ".dockerignore"))
    return {file.relative_to(context).as_posix() for file in files}


def test_metadata_images_copy_the_server_and_the_entry_point(tmp_path: Path):
    [metadata, mariadb] = select(["metadata", "mariadb"])
    assert metadata.name == "localhost/ml-metadata-server:1.17.1"
    assert mariadb.name == "localhost/mariadb:10.11-bookworm"
    server = copied("metadata", tmp_path)
    assert {
        "infrastructure/__init__.py",
        "infrastructure/metadata/requirements.txt",
        "infrastructure/metadata/environment.py",
        "infrastructure/metadata/server.py",
        "infrastructure/images/services/metadata/metadata_store_server",
    } <= server
    assert not [name for name in server if "__pycache__" in name]
    assert copied("mariadb", tmp_path) == {"container.cnf", "docker-entrypoint.sh"}
