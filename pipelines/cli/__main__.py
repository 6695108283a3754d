"""`python -m pipelines.cli`: the `lakehouse` command."""

import sys

from pipelines.cli import main

sys.exit(main())
