"""What the platform's setup Jobs share: run one step with the pod's Kubernetes credentials, line by line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

Step = Callable[[Mapping[str, str], Any], list[str]]


def run_step(step: Step, *expected: type[Exception]) -> int:
    """Run `step(environment, api client)`, printing each line it returns; on one of the `expected` errors
    print it on stderr and return 1 (the Job retries), else 0."""
    from components.core.kubernetes import KubernetesError, api_client

    try:
        for line in step(os.environ, api_client()):
            print(line, flush=True)
    except (KubernetesError, *expected) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
