"""Print the profile's settings as KEY=VALUE lines, for tools run by hand (`feast ui`, `dbt build`).

For a REST catalog with an OAuth2 client in the environment, a fresh bearer token follows (Feast's reads of
the gold table send it; it expires with the catalog's token lifetime).
"""

import os
import sys

from components.core.rest_catalog import TOKEN_VARIABLE, catalog_token_environ
from components.core.settings import get_settings

if __name__ == "__main__":
    settings = get_settings(sys.argv[1] if len(sys.argv) > 1 else None)
    values = settings.env()
    with catalog_token_environ(settings):
        if os.environ.get(TOKEN_VARIABLE):
            values[TOKEN_VARIABLE] = os.environ[TOKEN_VARIABLE]
    print("\n".join(f"{key}={value}" for key, value in values.items()))
