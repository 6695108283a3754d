"""The `lakehouse` command line: help on every command, data generation, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.cli import main

COMMANDS = [["data", "generate"], ["run"], ["compile"], ["serve"], ["predict"], ["predictions", "load"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: lakehouse" in capsys.readouterr().out


def test_console_script_is_installed():
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("data", "run", "compile", "serve", "predict"):
        assert command in done.stdout


def test_data_generate_writes_the_five_files(tmp_path, capsys):
    assert (
        main(["data", "generate", "--scale", "0.1", "--seed", "7", "--out", str(tmp_path), "--no-dvc"]) == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "customers.csv",
        "order_items.csv",
        "orders.csv",
        "products.csv",
        "stores.csv",
    ]
    assert "orders" in capsys.readouterr().out


def test_bad_arguments_are_named(tmp_path, capsys):
    assert main(["data", "generate", "--scale", "-1", "--out", str(tmp_path), "--no-dvc"]) == 2
    assert "scale" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--profile", "laptop"])


def test_compile_writes_yaml(tmp_path, capsys):
    target = tmp_path / "p.yaml"
    assert main(["compile", "--output", str(target)]) == 0
    assert target.read_text().startswith("# PIPELINE DEFINITION")


def test_predictions_load_says_what_it_loaded_and_what_it_left_out(monkeypatch, tmp_path, capsys):
    from testing.predictions import answered

    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    sealed = tmp_path / "prediction_log" / "sealed"
    sealed.mkdir(parents=True)
    (sealed / "one.jsonl").write_bytes(answered("r1", [1, 2]).lines() + b'{"request_id": "r2"')
    assert main(["predictions", "load"]) == 0
    captured = capsys.readouterr()
    assert "2 predictions from 1 segments into bronze.prediction_log" in captured.out
    assert "left out: one: line 3 was cut off mid-write" in captured.err


def test_predict_without_a_server_says_so(capsys):
    assert main(["predict", "1", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the model server" in capsys.readouterr().err


def test_a_command_gets_the_stack_env_files_keys_the_environment_lacks(monkeypatch, tmp_path):
    """After `make stack-up`, `lakehouse ... --profile stack` runs with the stack's S3 keys and catalog client
    in its environment (boto3 and pyarrow read them there); a key already set wins; nothing stays set."""
    import os

    from pipelines.cli import pipeline

    env_file = tmp_path / "stack.env"
    env_file.write_text(
        "AWS_ACCESS_KEY_ID=stack-key\nAWS_SECRET_ACCESS_KEY=stack-secret\n"
        "LAKEHOUSE_CATALOG_CLIENT_SECRET=stack-client\nLAKEHOUSE_CATALOG_URI=http://127.0.0.1:41234\n"
    )
    monkeypatch.setenv("LAKEHOUSE_STACK_ENV_FILE", str(env_file))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine")
    for name in ("AWS_ACCESS_KEY_ID", "LAKEHOUSE_CATALOG_CLIENT_SECRET", "LAKEHOUSE_CATALOG_URI"):
        monkeypatch.delenv(name, raising=False)
    seen = {}
    monkeypatch.setattr(pipeline, "lineage", lambda args: seen.update(os.environ) or 0)
    assert main(["lineage", "--profile", "stack"]) == 0
    assert (seen["AWS_ACCESS_KEY_ID"], seen["AWS_SECRET_ACCESS_KEY"]) == ("stack-key", "mine")
    assert seen["LAKEHOUSE_CATALOG_CLIENT_SECRET"] == "stack-client"  # pragma: allowlist secret
    assert "LAKEHOUSE_CATALOG_URI" not in seen, "endpoints stay in the settings"
    assert "AWS_ACCESS_KEY_ID" not in os.environ, "set for the command only"
    seen.clear()
    assert main(["lineage", "--profile", "local"]) == 0
    assert "AWS_ACCESS_KEY_ID" not in seen, "other profiles ignore the file"


def test_an_unreachable_registry_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert main(["lineage", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: the MLflow registry at http://127.0.0.1:9 failed:") and "Traceback" not in err
    )
    assert len(err.splitlines()) == 1
