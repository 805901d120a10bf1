"""End-to-end tests on a kind cluster (pytest-kind). They need a Docker engine; where `docker info`
fails they are skipped, and the skip reason says so. The `e2e` marker is registered in pyproject.toml."""
