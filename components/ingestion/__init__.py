"""Stage 1, ingestion: every source export loaded into `bronze.<table>` by dlt (`ingest.py`), and its KFP
component (`component.py`)."""
