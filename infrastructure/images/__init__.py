"""Container images built on this machine without a registry: BuildKit, a Debian base, the platform's."""
