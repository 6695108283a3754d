"""ML Metadata's gRPC service for Kubeflow Pipelines, from PyPI's ml-metadata in an environment of its own."""
