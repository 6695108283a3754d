"""`python -m infrastructure.metadata`: the ML Metadata gRPC server (run from its own environment)."""

import sys

from infrastructure.metadata.server import main

sys.exit(main())
