"""The artifacts ML Metadata holds for one Kubeflow Pipelines run, through ml-metadata's own gRPC client.

Run by the node tests with the metadata server's environment (the platform's cannot import ml-metadata):
`python run_artifacts.py HOST PORT RUN_ID`; prints one JSON list of {id, type, name, properties}.
"""

from __future__ import annotations

import json
import sys

from ml_metadata import metadata_store, proto


def main(host: str, port: str, run_id: str) -> list[dict]:
    store = metadata_store.MetadataStore(proto.MetadataStoreClientConfig(host=host, port=int(port)))
    context = store.get_context_by_type_and_name("system.PipelineRun", run_id)
    if context is None:
        return []
    types = {t.id: t.name for t in store.get_artifact_types()}
    found = []
    for artifact in store.get_artifacts_by_context(context.id):
        properties = artifact.custom_properties
        name = properties["display_name"].string_value if "display_name" in properties else artifact.name
        found.append(
            {
                "id": artifact.id,
                "type": types.get(artifact.type_id),
                "name": name,
                "properties": sorted(properties),
            }
        )
    return found


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
