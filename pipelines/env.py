"""Print the profile's settings as KEY=VALUE lines, for tools run by hand (`feast ui`, `dbt build`).

`python -m pipelines.env [PROFILE]` prints `KEY=VALUE` lines for `env $(...)`; with `--export`, shell-quoted
`export KEY='VALUE'` lines for `eval "$(...)"`, safe whatever a value holds (a password with `$(...)` in it
stays a password). For a REST catalog with an OAuth2 client in the environment, a fresh bearer token follows
(Feast's reads of the gold table send it; it expires with the catalog's token lifetime). Printed to a
terminal, credentials are masked: they are for the command that reads the output, not for the screen.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from components.core.rest_catalog import TOKEN_VARIABLE, catalog_token_environ
from components.core.settings import Settings, get_settings, missing_credentials

MASK = "********"


def secret_keys(settings: Settings, values: dict[str, str]) -> set[str]:
    """The keys of `values` that carry a credential: the env file's keys, the token, a password in a URL."""
    keys = set(missing_credentials(settings)) | {TOKEN_VARIABLE}
    return keys | {key for key, value in values.items() if "password=" in value or "://:" in value}


def render(values: dict[str, str], export: bool, masked: set[str] = frozenset()) -> str:
    """The lines to print: `KEY=VALUE`, or `export KEY='VALUE'` (quoted for a shell); `masked` keys hidden."""
    lines = []
    for key, value in values.items():
        shown = MASK if key in masked else value
        lines.append(f"export {key}={shlex.quote(shown)}" if export else f"{key}={shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.env", description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", help="settings profile (default: $LAKEHOUSE_PROFILE or local)")
    parser.add_argument("--export", action="store_true", help="shell-quoted `export` lines, for eval")
    args = parser.parse_args(argv)
    settings = get_settings(args.profile)
    values = settings.env()
    with catalog_token_environ(settings):
        if os.environ.get(TOKEN_VARIABLE):
            values[TOKEN_VARIABLE] = os.environ[TOKEN_VARIABLE]
    masked = secret_keys(settings, values) & set(values) if sys.stdout.isatty() else set()
    print(render(values, args.export, masked))
    if masked:
        print(
            f"({', '.join(sorted(masked))} masked on a terminal: use the output in $(...))", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
