"""How setting values are read and checked: comma-separated lists, allow-list entries, folders, hosts.

:func:`split_commas` reads a list from an environment variable; each check after it returns the
entries without duplicates, in order, or raises ``ValueError`` naming the bad ones, which pydantic
reports as a ``ValidationError`` of the field and
:func:`~agentensor_operator._settings.describe_settings_error` names by its environment variable.
"""

from __future__ import annotations

import re

from agentensor_api import normal_path, parse_host_pattern

MODULE_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
"""A Python dotted module name (``mycompany.agents``): what an allow-list entry must be. The chart's
values.schema.json carries the same pattern for ``runner.allowedModules``."""


SECRET_ENTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/[-._a-zA-Z0-9]+)?$")
"""An allowed-Secret entry: ``NAME`` (every key, and the Secret as a volume) or ``NAME/KEY`` (one key,
only through ``secretKeyRef``/``apiKeySecretRef``)."""


def split_commas(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (env values); anything else unchanged."""
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    return value


def all_matching(value: list[str], pattern: re.Pattern[str], why: str) -> list[str]:
    """``value`` without duplicates, in order. Raises ValueError naming every entry ``pattern`` does not match."""
    bad = [entry for entry in value if not pattern.match(entry)]
    if bad:
        raise ValueError(f"{', '.join(repr(entry) for entry in bad)} {why}")
    return list(dict.fromkeys(value))


def mount_folders(value: list[str]) -> list[str]:
    """Absolute folders, normalised (``//data/./x/`` -> ``/data/x``). Raises ValueError for a
    relative path, a ``..`` part, or ``/`` (which would allow mounts over the Python installation)."""
    out = []
    for path in value:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not an absolute path")
        normal = normal_path(path, "allowed mount path")
        if normal == "/":
            raise ValueError("'/' would allow mounts over the Python installation and the system")
        out.append(normal)
    return list(dict.fromkeys(out))


def host_patterns(value: list[str]) -> list[str]:
    """Host patterns (a name, ``*.suffix``, an IP or a CIDR network); raises ValueError for one
    :func:`agentensor_api.parse_host_pattern` refuses."""
    for host in value:
        parse_host_pattern(host)
    return list(dict.fromkeys(value))
