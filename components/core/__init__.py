"""The library beneath the pipeline's stages: settings, the catalog and its tables, artifacts, lineage, the
model. Any stage may import it; it imports no stage."""
