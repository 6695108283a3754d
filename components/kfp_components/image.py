"""The container image every component runs in: the platform's own package, installed with its lock file."""

import os

#: Built from the repository (see infrastructure/README.md); override for a private registry.
IMAGE = os.environ.get("LAKEHOUSE_IMAGE", "lakehouse-mlops:0.1.0")
