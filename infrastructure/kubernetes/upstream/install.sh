#!/usr/bin/env bash
# Install the upstream components the platform builds on, at pinned versions, in dependency order:
# cert-manager (KServe's webhooks need it) -> KServe -> Kubeflow Pipelines (into namespace lakehouse, with
# the overrides in kubeflow-pipelines/). Needs cluster-admin. Run it before `kubectl apply` of an overlay.
set -euo pipefail
CERT_MANAGER_VERSION=v1.19.2
KSERVE_VERSION=v0.20.0
KFP_VERSION=2.17.3
here="$(cd "$(dirname "$0")" && pwd)"

kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=300s

kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
kubectl -n kserve wait --for=condition=Available deployment --all --timeout=300s
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"

kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=${KFP_VERSION}"
kubectl wait --for=condition=Established --timeout=60s crd/applications.app.k8s.io
kubectl apply -k "${here}/kubeflow-pipelines"
kubectl -n lakehouse wait --for=condition=Available deployment -l application-crd-id=kubeflow-pipelines --timeout=600s
