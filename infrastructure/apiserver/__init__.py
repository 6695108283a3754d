"""A real Kubernetes API server (etcd + kube-apiserver, no nodes) on loopback, to check the manifests."""
