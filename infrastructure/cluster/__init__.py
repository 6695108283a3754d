"""The `cluster` profile's own tooling: rendering the manifests, setting up Polaris inside the cluster."""
