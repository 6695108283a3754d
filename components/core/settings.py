"""One settings object that decides every endpoint for the `local`, `stack` and `cluster` profiles."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

PROFILES = ("local", "stack", "cluster")
#: Where the code is: a checkout of the repository, or site-packages when installed from the wheel.
CODE_ROOT = Path(__file__).resolve().parents[2]
#: The project folder: the checkout, else (installed from the wheel) the working directory. The state folder
#: `.lakehouse/`, the source data `data/` and the stack's env file are under it unless set elsewhere.
REPO_ROOT = CODE_ROOT if (CODE_ROOT / "dbt" / "dbt_project.yml").is_file() else Path.cwd().resolve()
#: The dbt project: the checkout's `dbt/`, else the copy the wheel carries in the transformation stage.
DBT_PROJECT_DIR = (
    CODE_ROOT / "dbt" if REPO_ROOT == CODE_ROOT else CODE_ROOT / "components" / "transformation" / "dbt"
)
PROFILES_FILE = Path(__file__).with_name("profiles.toml")

#: Iceberg namespaces of the medallion layers.
BRONZE, SILVER, GOLD = "bronze", "silver", "gold"
#: Source tables, in load order. Each becomes `bronze.<name>`.
SOURCE_TABLES = ("customers", "products", "stores", "orders", "order_items")
FEATURE_SERVICE = "churn_v1"
SERVED_MODEL_NAME = "churn"
#: Feast online stores a profile can name; each has its `feature_repo/` configuration file.
ONLINE_STORES = ("sqlite", "redis")
#: Settings fields that hold TCP port numbers.
_PORT_FIELDS = ("serving_port", "trino_port")
#: Policy fields that hold non-negative numbers -> what the error calls them.
_NUMBER_FIELDS = {
    "promotion_min_margin": "a number",
    "drift_psi_threshold": "a number",
    "quality_max_roc_auc_drop": "a number",
    "retrain_cooldown_hours": "a number of hours",
    "shadow_share": "a share between 0 and 1",
    "shadow_promotion_min_labelled": "a number of customers",
    "champion_poll_seconds": "a number",
    "snapshot_retention_days": "a number of days",
    "prediction_log_rotate_seconds": "a number of seconds",
}
#: What ingestion may do with an export that holds a header and no rows.
EMPTY_EXPORTS = ("warn", "refuse")
#: Fields that are not read from profiles.toml.
_GIVEN_FIELDS = ("profile", "home", "data_dir", "policy", "credentials")
#: The online store's password: read from the environment (a Secret on the cluster), never a settings field;
#: it is written into `redis_url` when that holds none.
REDIS_PASSWORD = "REDIS_PASSWORD"  # pragma: allowlist secret (a variable's name)
#: The OAuth2 client of a REST catalog: read from the environment, never a settings field.
CATALOG_CLIENT_ID, CATALOG_CLIENT_SECRET = "LAKEHOUSE_CATALOG_CLIENT_ID", "LAKEHOUSE_CATALOG_CLIENT_SECRET"
#: What `infrastructure/local/stack.sh up` writes: the stack's endpoints and development-only keys.
STACK_ENV_FILE = REPO_ROOT / ".lakehouse" / "stack" / "stack.env"


class SettingsError(ValueError):
    """Raised when the profile or one of its values is missing or malformed."""


@dataclass(frozen=True)
class Policy:
    """The model and lakehouse policy: gates, thresholds and limits, the same on every profile by default."""

    #: ROC AUC a candidate must gain over the champion, on the same held-out window, to replace it.
    promotion_min_margin: float
    #: Population stability index above which a feature (or the score) counts as drifted.
    drift_psi_threshold: float
    #: ROC AUC realised predictions may lose against the holdout figure before they count as degraded.
    quality_max_roc_auc_drop: float
    #: `lakehouse monitor` starts at most one retraining run within this many hours.
    retrain_cooldown_hours: float
    #: Share of requests the model server also scores with the `challenger` version, off the request path.
    shadow_share: float
    #: `lakehouse monitor` promotes the challenger when its online answers beat the champion's, judged on at
    #: least this many labelled customers of each outcome (0: never; `monitoring/shadow_promotion.py`).
    shadow_promotion_min_labelled: float
    #: `lakehouse maintenance` expires snapshots older than this many days.
    snapshot_retention_days: float
    #: Seconds between the model server's checks of the `champion` alias (0: only on SIGHUP).
    champion_poll_seconds: float
    #: Largest request body the model server reads; a larger one is answered 413.
    serving_max_body_bytes: int
    #: Seconds a model server process writes one prediction log segment before sealing it for the loader.
    prediction_log_rotate_seconds: float
    #: What ingestion does with an export that holds a header and no rows: `warn` (load nothing from it,
    #: say so) or `refuse` (stop the run before anything is written, as for a broken file).
    empty_exports: str


@dataclass(frozen=True)
class Settings:
    """Every endpoint and path a step needs, and the policy it applies; build it with :func:`get_settings`."""

    profile: str
    home: Path
    data_dir: Path
    catalog_name: str
    catalog_type: str
    catalog_uri: str
    warehouse: str
    catalog_scope: str
    dbt_target: str
    dbt_duckdb_path: str
    feast_registry: str
    feast_online_path: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    model_name: str
    serving_host: str
    serving_port: int
    feast_online_store: str
    redis_url: str
    s3_endpoint: str
    s3_region: str
    trino_host: str
    trino_port: int
    trino_user: str
    image: str
    #: Where alerts go: a webhook taking Slack-compatible JSON, a JSON-lines file (each empty for none).
    alert_webhook_url: str
    alert_file: str
    #: The prediction log: the folder each model server process writes its open segment in (local and
    #: writable), and where sealed segments wait for the loader (a folder or `s3://bucket/prefix`).
    prediction_log_spool: str
    prediction_log_uri: str
    #: Where the ingest step finds the export files: empty for the data folder itself, or an object store
    #: prefix (`s3://bucket/prefix`) it copies `<table>.csv` from into the data folder first.
    sources_uri: str
    policy: Policy
    #: Credentials the `stack` env file holds (S3 keys, the catalog's client), for this process's clients
    #: and, where the environment has none, for subprocesses (:meth:`env`); never printed.
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

    def with_policy(self, **changes: float | str) -> Settings:
        """These settings with some policy values changed (a test's shorter poll, a smaller body limit)."""
        return replace(self, policy=replace(self.policy, **changes))

    def credential(self, name: str) -> str | None:
        """The credential `name` (e.g. AWS_ACCESS_KEY_ID) from the environment, else from the env file."""
        return os.environ.get(name) or self.credentials.get(name)

    @property
    def dbt_project_dir(self) -> Path:
        return DBT_PROJECT_DIR

    @property
    def feature_repo_dir(self) -> Path:
        return CODE_ROOT / "feature_repo"

    @property
    def feature_store_yaml(self) -> Path:
        """The Feast configuration of this profile's online store (`feature_store.yaml` for SQLite)."""
        suffix = "" if self.feast_online_store == "sqlite" else f".{self.feast_online_store}"
        return self.feature_repo_dir / f"feature_store{suffix}.yaml"

    def s3_properties(self, credentials: bool = True) -> dict[str, str]:
        """pyiceberg FileIO properties of the S3 endpoint; empty when the profile has none.

        Args:
            credentials: add the key pair from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when they are set
                (leave it out for properties that get stored, e.g. in the Feast registry).
        """
        if not self.s3_endpoint:
            return {}
        props = {"s3.endpoint": self.s3_endpoint, "s3.region": self.s3_region, "s3.path-style-access": "true"}
        if credentials:
            for key, env in (
                ("s3.access-key-id", "AWS_ACCESS_KEY_ID"),
                ("s3.secret-access-key", "AWS_SECRET_ACCESS_KEY"),
            ):
                if self.credential(env):
                    props[key] = self.credential(env)
        return props

    def catalog_properties(self, credentials: bool = True) -> dict[str, str]:
        """Properties for `pyiceberg.catalog.load_catalog(settings.catalog_name, **props)`.

        Args:
            credentials: add the S3 keys and a REST catalog's OAuth2 client (LAKEHOUSE_CATALOG_CLIENT_ID/
                LAKEHOUSE_CATALOG_CLIENT_SECRET) from the environment; leave them out for stored properties.
        """
        props = {"type": self.catalog_type, "uri": self.catalog_uri, "warehouse": self.warehouse}
        if self.catalog_type == "rest":
            client = (self.credential(CATALOG_CLIENT_ID), self.credential(CATALOG_CLIENT_SECRET))
            client = client if credentials else ()
            props |= rest_catalog_properties(self.catalog_uri, self.catalog_scope, *client)
        return {**props, **self.s3_properties(credentials)}

    def feast_redis_connection(self) -> str:
        """`redis_url` (`redis[s]://[:password@]host:port/db`) in Feast's `host:port,db=N,...` form."""
        url = urlsplit(self.redis_url)
        if url.scheme not in ("redis", "rediss") or not url.hostname:
            raise SettingsError(f"redis_url must look like redis://host:port/db, got {self.redis_url!r}")
        parts = [f"{url.hostname}:{url.port or 6379}", f"db={url.path.strip('/') or 0}"]
        if url.password:
            parts.append(f"password={unquote(url.password)}")
        if url.scheme == "rediss":
            parts.append("ssl=true")
        return ",".join(parts)

    def env(self) -> dict[str, str]:
        """Environment variables that carry these settings into a subprocess (dbt, Feast, KFP tasks).

        Every field and policy value as LAKEHOUSE_<FIELD>, plus what the tools read under their own names:
        the Feast configuration file (FEAST_FS_YAML_FILE_PATH), Feast's Redis connection string, and MLflow's
        S3 endpoint. Credentials of this process's environment are not copied (subprocesses inherit them);
        those only the `stack` env file holds are (:func:`missing_credentials`).
        """
        values = {
            "LAKEHOUSE_PROFILE": self.profile,
            "LAKEHOUSE_HOME": str(self.home),
            "LAKEHOUSE_DATA_DIR": str(self.data_dir),
        }
        for f in fields(self):
            if f.name not in _GIVEN_FIELDS:
                values[f"LAKEHOUSE_{f.name.upper()}"] = str(getattr(self, f.name))
        for f in fields(self.policy):
            values[f"LAKEHOUSE_{f.name.upper()}"] = str(getattr(self.policy, f.name))
        values |= missing_credentials(self)
        values["FEAST_FS_YAML_FILE_PATH"] = str(self.feature_store_yaml)
        if self.redis_url:
            values["LAKEHOUSE_FEAST_REDIS_CONNECTION"] = self.feast_redis_connection()
        if self.s3_endpoint:
            values["MLFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint
        return values

    def ensure_dirs(self) -> None:
        """Create the local state folders this profile writes to; a new state folder is its owner's only
        (it holds the catalog, the registry, the prediction log, and on `stack` the env file's keys)."""
        if not self.home.exists():
            self.home.mkdir(parents=True, mode=0o700)
            self.home.chmod(0o700)  # whatever the umask
        self.home.mkdir(parents=True, exist_ok=True)
        # a REST catalog's `warehouse` names the catalog's warehouse, not a folder of this machine
        warehouse = () if self.catalog_type == "rest" else (self.warehouse,)
        for value in (*warehouse, self.feast_registry, self.feast_online_path, self.mlflow_artifact_root):
            if value.startswith("file://"):
                Path(value.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
            elif "://" not in value:
                path = Path(value)
                (path if not path.suffix else path.parent).mkdir(parents=True, exist_ok=True)


def rest_catalog_properties(
    uri: str, scope: str, client_id: str | None = None, client_secret: str | None = None
) -> dict[str, str]:
    """pyiceberg properties of an Iceberg REST catalog reached with OAuth2 client credentials.

    The token comes from `<uri>/v1/oauth/tokens` (Apache Polaris' and the stack server's endpoint) with
    `scope`; pyiceberg asks for a new one when the catalog answers 401. The access-delegation header is sent
    empty: the object stores here have no STS, and a catalog asked for vended credentials would refuse.
    """
    props = {
        "oauth2-server-uri": f"{uri.rstrip('/')}/v1/oauth/tokens",
        "header.X-Iceberg-Access-Delegation": "",
    }
    if scope:
        props["scope"] = scope
    if client_secret:
        props["credential"] = f"{client_id}:{client_secret}" if client_id else client_secret
    return props


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of an env file (blank lines and `#` comments skipped); {} when there is no file."""
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip().removeprefix("export "): value.strip() for key, value in pairs}


def stack_env_file() -> Path:
    """The `stack` services' env file: $LAKEHOUSE_STACK_ENV_FILE, else the one `make stack-up` writes."""
    return Path(os.environ.get("LAKEHOUSE_STACK_ENV_FILE") or STACK_ENV_FILE)


def _profile_environment(profile: str) -> tuple[dict[str, str], dict[str, str]]:
    """The `stack` env file's endpoints (LAKEHOUSE_*) and credentials (the S3 keys, the catalog's client)."""
    if profile != "stack":
        return {}, {}
    values = read_env_file(stack_env_file())
    credentials = {
        key: value
        for key, value in values.items()
        if not key.startswith("LAKEHOUSE_") or key in (CATALOG_CLIENT_ID, CATALOG_CLIENT_SECRET)
    }
    return {key: value for key, value in values.items() if key not in credentials}, credentials


def with_redis_password(url: str, password: str) -> str:
    """`url` with `password` in it (quoted), unless it holds one already or either is empty."""
    parts = urlsplit(url)
    if not url or not password or parts.password is not None or "@" in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f":{quote(password, safe='')}@{parts.netloc}"))


def missing_credentials(settings: Settings) -> dict[str, str]:
    """The credentials of `settings` this process's environment lacks: what a command or a subprocess that
    reads them from the environment (boto3, pyarrow, the KFP steps) needs set, e.g. with
    :func:`scoped_environ`. Empty unless the `stack` env file holds keys the environment does not."""
    return {key: value for key, value in settings.credentials.items() if not os.environ.get(key)}


@cache
def _profiles() -> dict[str, dict[str, str]]:
    with PROFILES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def _profile_values(profile: str) -> dict[str, str]:
    """`[defaults]`, then `[policy]`, then the profile's own table of profiles.toml: a key it does not know
    is an error naming the table, so a misspelt key never silently falls back to a default."""
    tables = _profiles()
    known = {f.name for f in (*fields(Settings), *fields(Policy)) if f.name not in _GIVEN_FIELDS}
    values: dict[str, str] = {}
    for table in ("defaults", "policy", profile):
        unknown = sorted(set(tables.get(table, {})) - known)
        if unknown:
            raise SettingsError(f"{PROFILES_FILE} [{table}]: unknown key(s) {', '.join(unknown)}")
        values |= tables.get(table, {})
    return values


#: The platform image KFP components are defined with (they name it when this module is imported):
#: LAKEHOUSE_IMAGE, else the `image` of profiles.toml's [defaults], the one place it is written.
IMAGE = os.environ.get("LAKEHOUSE_IMAGE") or _profiles()["defaults"]["image"]


def default_home(profile: str) -> Path:
    """The state folder when LAKEHOUSE_HOME is unset: `.lakehouse/` for `local`, else a folder per profile.

    A `stack` run keeps dlt's working folder, the Feast registry and dbt's artifacts apart from the `local`
    ones, which describe other catalogs.
    """
    root = REPO_ROOT / ".lakehouse"
    return root if profile == "local" else root / "profiles" / profile


def get_settings(profile: str | None = None) -> Settings:
    """Build the settings for `profile` (default: $LAKEHOUSE_PROFILE, else `local`).

    Values come from `components/core/profiles.toml`; an environment variable LAKEHOUSE_<KEY> overrides a key.
    For `stack`, the env file `stack.sh up` wrote (:func:`stack_env_file`) sits between the two, so
    `lakehouse run --profile stack` reaches a stack on other ports without `eval "$(stack.sh env)"`.
    The state folder is $LAKEHOUSE_HOME, else :func:`default_home`.
    """
    profile = profile or os.environ.get("LAKEHOUSE_PROFILE", "local")
    if profile not in PROFILES:
        raise SettingsError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    home = Path(os.environ.get("LAKEHOUSE_HOME", default_home(profile))).resolve()
    data_dir = Path(os.environ.get("LAKEHOUSE_DATA_DIR", REPO_ROOT / "data")).resolve()
    raw = _profile_values(profile)
    written, credentials = _profile_environment(profile)
    values: dict[str, object] = {}
    for f in (*fields(Settings), *fields(Policy)):
        if f.name in _GIVEN_FIELDS:
            continue
        key = f"LAKEHOUSE_{f.name.upper()}"
        value = os.environ.get(key, written.get(key, raw.get(f.name)))
        if value is None:
            raise SettingsError(f"profile {profile!r} has no value for {f.name!r} in {PROFILES_FILE}")
        value = str(value).format(home=home, data=data_dir)
        values[f.name] = value
    for name in _PORT_FIELDS:
        try:
            values[name] = int(values[name])
        except ValueError as exc:
            raise SettingsError(f"{name} must be an integer, got {values[name]!r}") from exc
    for name, what in _NUMBER_FIELDS.items():
        given = values[name]
        try:
            values[name] = float(given)
        except ValueError:
            raise SettingsError(f"{name} must be {what}, got {given!r}") from None
        if not values[name] >= 0:
            raise SettingsError(f"{name} must be {what} >= 0, got {given!r}")
    if values["shadow_share"] > 1:
        raise SettingsError(f"shadow_share must be a share between 0 and 1, got {values['shadow_share']:g}")
    if values["empty_exports"] not in EMPTY_EXPORTS:
        raise SettingsError(
            f"empty_exports must be one of {', '.join(EMPTY_EXPORTS)}, got {values['empty_exports']!r}"
        )
    body_limit = values["serving_max_body_bytes"]
    values["serving_max_body_bytes"] = int(body_limit) if str(body_limit).isdigit() else 0
    if values["serving_max_body_bytes"] < 1024:
        raise SettingsError(f"serving_max_body_bytes must be whole bytes, at least 1024, got {body_limit!r}")
    values["redis_url"] = with_redis_password(values["redis_url"], os.environ.get(REDIS_PASSWORD, ""))
    online = values["feast_online_store"]
    if online not in ONLINE_STORES:
        raise SettingsError(f"feast_online_store must be one of {', '.join(ONLINE_STORES)}, got {online!r}")
    if online == "redis" and not values["redis_url"]:
        raise SettingsError(f"profile {profile!r} uses the redis online store but redis_url is empty")
    policy = Policy(**{f.name: values.pop(f.name) for f in fields(Policy)})
    settings = Settings(
        profile=profile, home=home, data_dir=data_dir, policy=policy, credentials=credentials, **values
    )
    if settings.redis_url:
        settings.feast_redis_connection()  # a malformed URL is an error now, not in a later step
    return settings


@contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore the previous values."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
