"""Stage 6, deployment: the champion rolled out, as a KServe `InferenceService` on a cluster
(`inference_service.py`) or as a local model server (`deploy.py`), and its KFP component (`component.py`)."""
