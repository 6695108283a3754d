"""Settings per profile: the stack's endpoints, environment overrides, S3 and Redis values for the tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.core.settings import SettingsError, get_settings
from infrastructure.local.config import CATALOG_NAME, CATALOG_SCOPE, DEFAULTS, load_config
from infrastructure.local.stack import write_env_file

CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")
CREDENTIALS += ("MLFLOW_S3_ENDPOINT_URL",)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in (*CREDENTIALS, "FEAST_FS_YAML_FILE_PATH"):
        monkeypatch.setenv(name, "")  # recorded, so anything the test sets is undone
        monkeypatch.delenv(name)
    for name in [name for name in os.environ if name.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_STACK_ENV_FILE", str(tmp_path / "no-stack.env"))


def test_local_profile_has_no_network_endpoints():
    settings = get_settings("local")
    assert settings.catalog_properties() == {
        "type": "sql",
        "uri": f"sqlite:///{settings.home}/catalog.db",
        "warehouse": f"file://{settings.home}/warehouse",
    }
    assert settings.feature_store_yaml.name == "feature_store.yaml"
    env = settings.env()
    assert env["FEAST_FS_YAML_FILE_PATH"] == str(settings.feature_store_yaml)
    assert "LAKEHOUSE_FEAST_REDIS_CONNECTION" not in env and "MLFLOW_S3_ENDPOINT_URL" not in env


def test_stack_profile_matches_the_stack_scripts_defaults():
    settings, config = get_settings("stack"), load_config({})
    assert (settings.catalog_type, settings.catalog_uri) == ("rest", config.catalog_url)
    assert (settings.warehouse, settings.catalog_scope) == (CATALOG_NAME, CATALOG_SCOPE)
    assert settings.s3_endpoint == config.s3_endpoint
    assert settings.mlflow_tracking_uri == config.mlflow_url
    assert settings.redis_url == f"redis://127.0.0.1:{DEFAULTS['STACK_REDIS_PORT']}/0"
    assert (settings.trino_host, settings.trino_port) == ("127.0.0.1", config.trino_port)
    assert (settings.dbt_target, settings.feast_online_store) == ("trino", "redis")
    assert settings.feature_store_yaml.name == "feature_store.redis.yaml"


def test_stack_scripts_environment_points_the_profile_at_other_ports(monkeypatch):
    ports = {"STACK_PG_PORT": "41001", "STACK_REDIS_PORT": "41002", "STACK_S3_PORT": "41003"}
    ports |= {"STACK_TRINO_PORT": "41004", "STACK_MLFLOW_PORT": "41005", "STACK_REST_PORT": "41006"}
    keys = {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"}
    keys |= {"LAKEHOUSE_CATALOG_CLIENT_ID": "ci", "LAKEHOUSE_CATALOG_CLIENT_SECRET": "cs"}
    config = load_config({**ports, **keys})
    for name, value in config.client_env().items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert settings.profile == "stack" and settings.trino_port == 41004
    assert settings.catalog_properties() == config.catalog_properties()
    env = settings.env()
    assert env["LAKEHOUSE_TRINO_PORT"] == "41004" and env["LAKEHOUSE_TRINO_HOST"] == "127.0.0.1"
    assert env["LAKEHOUSE_FEAST_REDIS_CONNECTION"] == "127.0.0.1:41002,db=0"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:41003"
    assert not {"sk", "cs"} & set(env.values()), "credentials stay in the environment they came from"


def test_stack_profile_reads_the_env_file_that_up_wrote(monkeypatch, tmp_path):
    """After `make stack-up`, `--profile stack` finds the stack (on any ports) and its keys without `eval`."""
    config = load_config({"STACK_HOME": str(tmp_path / "stack"), "STACK_REST_PORT": "41006"})
    write_env_file(config)
    monkeypatch.setenv("LAKEHOUSE_STACK_ENV_FILE", str(config.env_file))
    before = dict(os.environ)
    settings = get_settings("stack")
    assert dict(os.environ) == before, "reading the settings changes no environment variable"
    assert settings.catalog_uri == "http://127.0.0.1:41006"
    assert settings.catalog_properties() == config.catalog_properties()
    assert config.secret_key not in repr(settings), "credentials are never printed"
    # a command or subprocess gets the keys the environment lacks, explicitly
    env = settings.env()
    assert env["AWS_SECRET_ACCESS_KEY"] == config.secret_key
    assert env["LAKEHOUSE_CATALOG_CLIENT_SECRET"] == config.catalog_client_secret
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine")
    assert "AWS_SECRET_ACCESS_KEY" not in settings.env(), "a key of the environment is never overridden"
    assert settings.s3_properties()["s3.secret-access-key"] == "mine"
    assert get_settings("local").catalog_type == "sql", "other profiles ignore the file"
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", "http://127.0.0.1:41999")
    assert get_settings("stack").catalog_uri == "http://127.0.0.1:41999", "the environment wins"


def test_profiles_share_defaults_and_policy_and_a_misspelt_key_is_named(monkeypatch, tmp_path):
    """[defaults] and [policy] apply to every profile unless its own table says otherwise; LAKEHOUSE_<KEY>
    overrides a policy value like any other; an unknown key in a table is an error naming the table."""
    import tomllib

    from components.core import settings as module

    tables = tomllib.loads(module.PROFILES_FILE.read_text())
    for profile in ("local", "stack", "cluster"):
        settings = get_settings(profile)
        assert settings.model_name == tables["defaults"]["model_name"]
        assert settings.policy.promotion_min_margin == float(tables["policy"]["promotion_min_margin"])
        assert settings.image == tables["defaults"]["image"], "one source of the platform image"
    assert get_settings("cluster").trino_port == 8080 != get_settings("local").trino_port
    monkeypatch.setenv("LAKEHOUSE_DRIFT_PSI_THRESHOLD", "0.35")
    assert get_settings("stack").policy.drift_psi_threshold == 0.35
    assert "LAKEHOUSE_DRIFT_PSI_THRESHOLD=0.35" in [
        f"{k}={v}" for k, v in get_settings("stack").env().items()
    ]

    misspelt = tmp_path / "profiles.toml"
    misspelt.write_text(module.PROFILES_FILE.read_text().replace("[stack]\n", "[stack]\ncatlog_uri = 'x'\n"))
    monkeypatch.setattr(module, "PROFILES_FILE", misspelt)
    module._profiles.cache_clear()
    try:
        with pytest.raises(SettingsError, match=r"\[stack\]: unknown key\(s\) catlog_uri"):
            get_settings("stack")
    finally:
        monkeypatch.undo()
        module._profiles.cache_clear()


def test_rest_catalog_properties_are_the_same_code_for_stack_and_cluster(monkeypatch):
    """Polaris specifics: token endpoint under the catalog URI, scope, an empty access-delegation header."""
    monkeypatch.setenv("LAKEHOUSE_CATALOG_CLIENT_ID", "etl")
    monkeypatch.setenv("LAKEHOUSE_CATALOG_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sk")
    cluster = get_settings("cluster").catalog_properties()
    assert cluster == {
        "type": "rest",
        "uri": "http://polaris:8181/api/catalog",
        "warehouse": "lakehouse",
        "oauth2-server-uri": "http://polaris:8181/api/catalog/v1/oauth/tokens",
        "header.X-Iceberg-Access-Delegation": "",
        "scope": "PRINCIPAL_ROLE:ALL",
        "credential": "etl:s3cret",
        "s3.endpoint": "http://minio:9000",
        "s3.region": "us-east-1",
        "s3.path-style-access": "true",
        "s3.access-key-id": "ak",
        "s3.secret-access-key": "sk",
    }
    stack = get_settings("stack").catalog_properties()
    assert set(stack) == set(cluster), "the two profiles differ in values only"
    stored = get_settings("cluster").catalog_properties(credentials=False)
    assert not {"credential", "s3.access-key-id", "s3.secret-access-key"} & set(stored)


def test_stored_s3_properties_leave_the_keys_out(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sk")
    settings = get_settings("stack")
    assert settings.s3_properties(credentials=False) == {
        "s3.endpoint": settings.s3_endpoint,
        "s3.region": "us-east-1",
        "s3.path-style-access": "true",
    }
    assert settings.s3_properties()["s3.secret-access-key"] == "sk"


@pytest.mark.parametrize(
    ("url", "connection"),
    [
        ("redis://127.0.0.1:6380/2", "127.0.0.1:6380,db=2"),
        ("redis://cache", "cache:6379,db=0"),
        ("rediss://:p%40ss@cache:6390/1", "cache:6390,db=1,password=p@ss,ssl=true"),
    ],
)
def test_redis_url_becomes_feasts_connection_string(monkeypatch, url, connection):
    monkeypatch.setenv("LAKEHOUSE_REDIS_URL", url)
    assert get_settings("stack").feast_redis_connection() == connection


def test_the_redis_password_of_the_environment_goes_into_the_url_once(monkeypatch):
    """On the cluster the password comes from Secret `redis` as REDIS_PASSWORD; a URL with one keeps it."""
    monkeypatch.setenv("REDIS_PASSWORD", "pa:ss/word")
    settings = get_settings("cluster")
    assert settings.redis_url == "redis://:pa%3Ass%2Fword@redis:6379/0"
    assert settings.feast_redis_connection() == "redis:6379,db=0,password=pa:ss/word"
    monkeypatch.setenv("LAKEHOUSE_REDIS_URL", settings.redis_url)  # as a subprocess gets it from env()
    assert get_settings("cluster").redis_url == settings.redis_url


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LAKEHOUSE_TRINO_PORT", "trino", "trino_port must be an integer"),
        ("LAKEHOUSE_SERVING_PORT", "", "serving_port must be an integer"),
        ("LAKEHOUSE_FEAST_ONLINE_STORE", "dynamodb", "feast_online_store must be one of sqlite, redis"),
        ("LAKEHOUSE_REDIS_URL", "127.0.0.1:6379", "redis_url must look like redis://host:port/db"),
        ("LAKEHOUSE_REDIS_URL", "", "uses the redis online store but redis_url is empty"),
        ("LAKEHOUSE_PROMOTION_MIN_MARGIN", "a bit", "promotion_min_margin must be a number"),
        ("LAKEHOUSE_DRIFT_PSI_THRESHOLD", "-0.1", "drift_psi_threshold must be a number >= 0"),
        ("LAKEHOUSE_SNAPSHOT_RETENTION_DAYS", "a week", "snapshot_retention_days must be a number of days"),
        ("LAKEHOUSE_SNAPSHOT_RETENTION_DAYS", "-1", "snapshot_retention_days must be a number of days"),
        ("LAKEHOUSE_CHAMPION_POLL_SECONDS", "often", "champion_poll_seconds must be a number"),
        ("LAKEHOUSE_SERVING_MAX_BODY_BYTES", "1MB", "serving_max_body_bytes must be whole bytes"),
        ("LAKEHOUSE_SERVING_MAX_BODY_BYTES", "100", "serving_max_body_bytes must be whole bytes"),
        ("LAKEHOUSE_EMPTY_EXPORTS", "skip", "empty_exports must be one of warn, refuse"),
        ("LAKEHOUSE_SHADOW_PROMOTION_MIN_LABELLED", "many", "shadow_promotion_min_labelled must be a number"),
    ],
)
def test_malformed_values_are_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        get_settings("stack")


def test_each_profile_keeps_its_state_apart_unless_told_otherwise(monkeypatch):
    from components.core.settings import REPO_ROOT

    monkeypatch.delenv("LAKEHOUSE_HOME")
    assert get_settings("local").home == REPO_ROOT / ".lakehouse"
    assert get_settings("stack").home == REPO_ROOT / ".lakehouse" / "profiles" / "stack"
    monkeypatch.setenv("LAKEHOUSE_HOME", "/tmp/elsewhere")
    assert get_settings("stack").home == get_settings("local").home == Path("/tmp/elsewhere")


def test_a_rest_catalogs_warehouse_is_never_made_a_folder(monkeypatch, tmp_path):
    """On the cluster `warehouse = "lakehouse"` names the catalog's warehouse; a pod whose working folder is
    read-only must not try to create `./lakehouse` (it failed with "Read-only file system")."""
    monkeypatch.chdir(tmp_path)
    settings = get_settings("cluster")
    assert (settings.catalog_type, settings.warehouse) == ("rest", "lakehouse")
    settings.ensure_dirs()
    assert not (tmp_path / "lakehouse").exists()
    local = get_settings("local")
    local.ensure_dirs()
    assert Path(local.warehouse.removeprefix("file://")).is_dir()


def test_a_new_state_folder_is_its_owners_only(tmp_path, monkeypatch):
    import stat

    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "state"))
    get_settings("local").ensure_dirs()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
