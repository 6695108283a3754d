"""A real single-node Kubernetes cluster on this machine: etcd, the control plane, containerd, kubelet."""
