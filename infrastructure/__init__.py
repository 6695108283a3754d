"""Kubernetes manifests and the scripts that start the `stack` services on one machine."""
