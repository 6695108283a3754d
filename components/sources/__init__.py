"""dlt sources of the platform: one package per source system."""
