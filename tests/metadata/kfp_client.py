"""What Kubeflow Pipelines' driver and launcher ask of ML Metadata, through ml-metadata's own gRPC client.

Run by the tests with the server's environment (the platform's cannot import ml-metadata):
`python kfp_client.py HOST PORT RUN_NAME`; prints what it read back as one JSON object.
"""

from __future__ import annotations

import json
import sys

from ml_metadata import errors, metadata_store, proto
from ml_metadata.proto import metadata_store_pb2 as mlmd

PIPELINE = "churn-training"


def _string(value: str) -> mlmd.Value:
    return mlmd.Value(string_value=value)


def _pipeline_context(store: metadata_store.MetadataStore, type_id: int) -> tuple[mlmd.Context, bool]:
    """The pipeline's context, created on the first run (the driver's get-or-create)."""
    found = store.get_context_by_type_and_name("system.Pipeline", PIPELINE)
    if found is not None:
        return found, True
    context = mlmd.Context(type_id=type_id, name=PIPELINE)
    [context.id] = store.put_contexts([context])
    return context, False


def main(host: str, port: str, run: str) -> dict:
    store = metadata_store.MetadataStore(proto.MetadataStoreClientConfig(host=host, port=int(port)))
    pipeline_type = store.put_context_type(mlmd.ContextType(name="system.Pipeline"))
    run_type = store.put_context_type(mlmd.ContextType(name="system.PipelineRun"))
    execution_type = store.put_execution_type(mlmd.ExecutionType(name="system.ContainerExecution"))
    dataset_type = store.put_artifact_type(mlmd.ArtifactType(name="system.Dataset"))
    model_type = store.put_artifact_type(
        mlmd.ArtifactType(name="system.Model", properties={"framework": mlmd.STRING})
    )
    pipeline, reused = _pipeline_context(store, pipeline_type)
    run_context = mlmd.Context(type_id=run_type, name=run)
    run_context.custom_properties["namespace"].CopyFrom(_string("lakehouse"))
    [run_context.id] = store.put_contexts([run_context])
    store.put_parent_contexts([mlmd.ParentContext(child_id=run_context.id, parent_id=pipeline.id)])
    try:
        store.put_contexts([mlmd.Context(type_id=run_type, name=run)])
        duplicate = "accepted"
    except errors.AlreadyExistsError:
        duplicate = "AlreadyExistsError"

    # the driver: the task's execution RUNNING, its input dataset and INPUT event, in the run's contexts
    features = f"s3://lakehouse/{run}/features"
    dataset = mlmd.Artifact(type_id=dataset_type, uri=features, name=f"{run}-features")
    dataset.state = mlmd.Artifact.LIVE
    execution = mlmd.Execution(type_id=execution_type, name=f"{run}-train")
    execution.last_known_state = mlmd.Execution.RUNNING
    execution.custom_properties["task_name"].CopyFrom(_string("train"))
    read = mlmd.Event(type=mlmd.Event.INPUT)
    read.path.steps.add().key = "features"
    execution_id, [dataset_id], _ = store.put_execution(
        execution, [(dataset, read)], [pipeline, run_context], reuse_context_if_already_exist=True
    )

    # the launcher: the model with an OUTPUT event, then the execution COMPLETE (an update of the same id)
    model = mlmd.Artifact(type_id=model_type, uri=f"s3://lakehouse/{run}/model", name=f"{run}-model")
    model.properties["framework"].CopyFrom(_string("sklearn"))
    [model.id] = store.put_artifacts([model])
    wrote = mlmd.Event(artifact_id=model.id, execution_id=execution_id, type=mlmd.Event.OUTPUT)
    wrote.path.steps.add().key = "model"
    store.put_events([wrote])
    store.put_attributions_and_associations(
        [mlmd.Attribution(context_id=run_context.id, artifact_id=model.id)],
        [mlmd.Association(context_id=run_context.id, execution_id=execution_id)],
    )
    [execution] = store.get_executions_by_id([execution_id])
    execution.last_known_state = mlmd.Execution.COMPLETE
    store.put_executions([execution])

    # what the UI and a later driver read back
    events = store.get_events_by_execution_ids([execution_id])
    uris = {a.id: a.uri for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    run_executions = store.get_executions_by_context(run_context.id)
    states = [mlmd.Execution.State.Name(e.last_known_state) for e in run_executions]
    models = store.get_artifacts_by_type("system.Model")
    return {
        "pipeline_context_reused": reused,
        "duplicate_run_context": duplicate,
        "types": {
            "artifact": store.get_artifact_type("system.Model").properties["framework"] == mlmd.STRING,
            "execution": store.get_execution_type("system.ContainerExecution").id == execution_type,
            "context": store.get_context_type("system.PipelineRun").id == run_type,
        },
        "run_context": store.get_context_by_type_and_name("system.PipelineRun", run)
        .custom_properties["namespace"]
        .string_value,
        "run_parents": [c.name for c in store.get_parent_contexts_by_context(run_context.id)],
        "pipeline_children": sorted(c.name for c in store.get_children_contexts_by_context(pipeline.id)),
        "run_executions": [
            (e.name, state, e.custom_properties["task_name"].string_value)
            for e, state in zip(run_executions, states, strict=True)
        ],
        "pipeline_executions": [e.name for e in store.get_executions_by_context(pipeline.id)],
        "run_artifacts": sorted(a.uri for a in store.get_artifacts_by_context(run_context.id)),
        "events": sorted(
            (mlmd.Event.Type.Name(e.type), e.path.steps[0].key, uris[e.artifact_id]) for e in events
        ),
        "artifact_events": [
            mlmd.Event.Type.Name(e.type) for e in store.get_events_by_artifact_ids([dataset_id, model.id])
        ],
        "model_by_type_and_name": store.get_artifact_by_type_and_name("system.Model", f"{run}-model").uri,
        "models_of_type": [a.name for a in models if a.name.startswith(run)],
        "execution_by_type_and_name": store.get_execution_by_type_and_name(
            "system.ContainerExecution", f"{run}-train"
        ).id
        == execution_id,
        "by_uri": [a.name for a in store.get_artifacts_by_uri(features)],
        "contexts_of_model": sorted(c.name for c in store.get_contexts_by_artifact(model.id)),
        "contexts_of_execution": sorted(c.name for c in store.get_contexts_by_execution(execution_id)),
        "contexts_by_id": [c.name for c in store.get_contexts_by_id([run_context.id])],
        "absent_context": store.get_context_by_type_and_name("system.PipelineRun", f"{run}-absent"),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
