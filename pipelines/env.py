"""Print the profile's settings as KEY=VALUE lines, for tools run by hand (`feast ui`, `dbt build`)."""

import sys

from components.settings import get_settings

if __name__ == "__main__":
    profile = sys.argv[1] if len(sys.argv) > 1 else None
    print("\n".join(f"{key}={value}" for key, value in get_settings(profile).env().items()))
