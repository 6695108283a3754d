"""`lakehouse submit` against a CONTRACT server (tests/pipelines/kfp_contract.py) that implements the KFP
v2beta1 endpoints `kfp.Client` calls. This is a contract test, not a test against the real Kubeflow
Pipelines API server, which is not run here (infrastructure/README.md says why)."""

from __future__ import annotations

import pytest
import yaml

from components.core.settings import get_settings
from pipelines.cli import main
from pipelines.compile import compile_pipeline
from pipelines.submit import bearer_token
from tests.pipelines.kfp_contract import kfp_contract_server

TOKEN = "contract-test-token"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(compile_pipeline(tmp_path_factory.mktemp("submit") / "churn.yaml", get_settings("cluster")))


@pytest.fixture
def kfp(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_KFP_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", "/tmp")  # kfp.Client reads and may write ~/.config/kfp/context.json
    with kfp_contract_server(TOKEN) as server:
        yield server


def test_submit_uploads_then_adds_versions_and_starts_runs_in_one_experiment(kfp, package, capsys):
    url, state = kfp
    args = [
        "submit",
        "--host",
        url,
        "--package",
        package,
        "--experiment",
        "nightly",
        "--param",
        "profile=cluster",
    ]
    assert main([*args, "--run-name", "first"]) == 0
    assert main([*args, "--run-name", "second"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(state.pipelines) == 1 and len(state.versions) == 3  # the upload, then a version per submit
    assert len(state.experiments) == 1 and len(state.runs) == 2
    for line, (run_id, run) in zip(out, state.runs.items(), strict=True):
        assert line.endswith(f"{url}/#/runs/details/{run_id}")
        assert run["experiment_id"] in state.experiments
        assert run["service_account"] == "pipeline-runner"
        assert run["runtime_config"]["parameters"] == {"profile": "cluster"}
        version = state.versions[run["pipeline_version_reference"]["pipeline_version_id"]]
        assert version["pipeline_id"] == run["pipeline_version_reference"]["pipeline_id"]
        executors = version["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        assert {s["secretName"] for s in executors["exec-train"]["secretAsEnv"]} >= {"lakehouse-credentials"}
    assert [run["display_name"] for run in state.runs.values()] == ["first", "second"]


def test_schedule_creates_a_recurring_run(kfp, package, capsys):
    url, state = kfp
    assert main(["submit", "--host", url, "--package", package, "--schedule", "0 0 3 * * *"]) == 0
    (recurring,) = state.recurring_runs.values()
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["service_account"] == "pipeline-runner" and not state.runs
    assert capsys.readouterr().out.strip().endswith(f"#/recurringrun/details/{recurring['recurring_run_id']}")


def test_an_expired_token_gets_one_line_and_nothing_is_uploaded(kfp, package, capsys, monkeypatch):
    url, state = kfp
    monkeypatch.setenv("LAKEHOUSE_KFP_TOKEN", "expired")
    assert main(["submit", "--host", url, "--package", package]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused the token (401; expired?)" in err
    assert "kubectl -n lakehouse create token pipeline-runner" in err
    assert not state.pipelines and not state.runs


@pytest.mark.parametrize(("progress", "code"), [(["RUNNING", "SUCCEEDED"], 0), (["PENDING", "FAILED"], 1)])
def test_wait_follows_the_run_to_its_end_and_exits_by_its_state(kfp, package, capsys, progress, code):
    url, state = kfp
    state.run_progress = progress
    assert main(["submit", "--host", url, "--package", package, "--wait", "30"]) == code
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].endswith(f"ended {progress[-1]}")
    assert sum(request.startswith("GET /apis/v2beta1/runs/") for request in state.requests) == 2


def test_wait_names_a_run_that_has_not_ended_in_time(kfp, package, capsys):
    url, state = kfp
    state.run_progress = ["RUNNING"]
    assert main(["submit", "--host", url, "--package", package, "--wait", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is still RUNNING after 0 s" in err


def test_an_unreachable_host_gets_one_line(package, capsys, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_KFP_TOKEN", TOKEN)
    assert main(["submit", "--host", "http://127.0.0.1:9", "--package", package]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the KFP API at http://127.0.0.1:9" in err
    assert "port-forward svc/ml-pipeline-ui" in err


def test_the_token_comes_from_the_kubeconfig_when_the_environment_has_none(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_KFP_TOKEN", raising=False)
    config = {
        "current-context": "lab",
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "me"}}],
        "users": [
            {"name": "other", "user": {"token": "no"}},
            {"name": "me", "user": {"token": "from-kubeconfig"}},
        ],
    }
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    assert bearer_token() == "from-kubeconfig"
