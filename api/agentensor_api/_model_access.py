"""Which API key a model may use, and where it may send it (the model-credential trust rule).

A run author writes ``spec.models.<name>.apiKeyEnv`` and ``baseUrl``; the key's value belongs to
whoever set the variable (the cluster admin through a Secret, or the local user's shell). So the
author may only pick among what was granted, and a key only leaves the process for a destination
that was granted too:

- **Which variable.** ``AGENTENSOR_*`` variables are the runner's own settings and secrets (the
  database URL with its password) and are never read as a key, except the model's own default
  ``AGENTENSOR_MODEL_<NAME>_API_KEY`` (in a Pod the operator fills it only from that model's
  ``apiKeySecretRef``; locally the user exported it under a name that says what it is for). Any
  other variable must be the provider's well-known key (:data:`PROVIDER_KEY_ENVS`, e.g.
  ``OPENAI_API_KEY`` for ``openai:`` models only) or listed in ``AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST``.
- **Where to.** A model with a key (named, or the provider client's own default variable) sends it
  either to the provider's own endpoint (no ``baseUrl``) or to a ``baseUrl`` whose host is on
  ``AGENTENSOR_MODEL_HOST_ALLOWLIST`` (loopback always is). A model of a provider whose client
  reads a default key variable (:data:`PROVIDER_KEY_ENVS`) counts as keyed. A keyless model of
  another provider may use any host, unless ``AGENTENSOR_MODEL_HOST_STRICT`` is on: then every
  ``baseUrl`` host must be listed.

In a runner Pod the operator sets the three variables from chart values (a manifest cannot set
``AGENTENSOR_*`` variables); locally the user exports them. Pure functions: the runner calls
:meth:`ModelAccess.check` before it builds any client, and the operator validates its settings
with :func:`parse_host_pattern` and :func:`check_key_env_grant`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._common import ENV_VAR_PATTERN, ModelSpec, api_key_env_name, default_api_key_env
from ._errors import ManifestError

KEY_ENV_ALLOWLIST_ENV = "AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST"
"""Comma-separated variable names a manifest's ``apiKeyEnv`` may name (beyond the built-in ones)."""
HOST_ALLOWLIST_ENV = "AGENTENSOR_MODEL_HOST_ALLOWLIST"
"""Comma-separated hosts a ``baseUrl`` may point a key at: ``name``, ``*.suffix``, IP or CIDR."""
HOST_STRICT_ENV = "AGENTENSOR_MODEL_HOST_STRICT"
"""``true``: every ``baseUrl`` host must be on the host allow-list, keyed or not (egress control)."""

RESERVED_PREFIX = "AGENTENSOR_"

PROVIDER_KEY_ENVS: Mapping[str, frozenset[str]] = {
    "openai": frozenset({"OPENAI_API_KEY"}),
    "azure_openai": frozenset({"AZURE_OPENAI_API_KEY"}),
    "anthropic": frozenset({"ANTHROPIC_API_KEY"}),
    "google_genai": frozenset({"GOOGLE_API_KEY", "GEMINI_API_KEY"}),
    "mistralai": frozenset({"MISTRAL_API_KEY"}),
    "groq": frozenset({"GROQ_API_KEY"}),
    "cohere": frozenset({"COHERE_API_KEY"}),
    "fireworks": frozenset({"FIREWORKS_API_KEY"}),
    "together": frozenset({"TOGETHER_API_KEY"}),
    "deepseek": frozenset({"DEEPSEEK_API_KEY"}),
    "xai": frozenset({"XAI_API_KEY"}),
    "perplexity": frozenset({"PPLX_API_KEY"}),
}
"""Provider (the part of ``model`` before ``:``) -> its well-known key variables. Granted by default,
each for its own provider only, and these providers' clients read them when no key is given, so a
keyless model of one of them counts as keyed for the destination rule."""

LOOPBACK: tuple[str, ...] = ("localhost", "127.0.0.0/8", "::1")
"""Always on the host allow-list: a loopback server is the user's own (locally) or the Pod's own."""

_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_TRUE = frozenset({"1", "true", "yes", "on"})

HostPattern = str | ipaddress.IPv4Network | ipaddress.IPv6Network
"""A host name (``vllm.llm.svc``), a suffix (``*.corp.example``: subdomains only), or a network."""


def parse_host_pattern(entry: str) -> HostPattern:
    """One host allow-list entry: a name, ``*.suffix``, an IP address or a CIDR network.

    Raises:
        ValueError: the entry is none of those (a URL, a port, a space...).
    """
    text = entry.strip().lower().rstrip(".")
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        pass
    if not _HOST_NAME.match(text):
        raise ValueError(
            f"{entry!r} is not a host name, *.suffix, IP address or CIDR network (no scheme, port or path)"
        )
    return text


def check_key_env_grant(name: str) -> str:
    """``name`` if it may be granted as an API key variable.

    Raises:
        ValueError: not an environment variable name, or an ``AGENTENSOR_*`` name (never grantable).
    """
    if not re.match(ENV_VAR_PATTERN, name):
        raise ValueError(f"{name!r} is not an environment variable name")
    if name.upper().startswith(RESERVED_PREFIX):
        raise ValueError(f"{name!r}: {RESERVED_PREFIX}* variables hold the runner's own settings and are never a key")
    return name


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def base_url_host(name: str, base_url: str) -> str:
    """The host a ``baseUrl`` sends to, lower-case, as every HTTP client reads it.

    Refuses what URL parsers disagree on (user info, backslashes, spaces and control or non-ASCII
    characters, percent-encoded or otherwise odd host names), so the host checked is the host used.

    Raises:
        ManifestError: field ``spec.models.<name>.baseUrl``.
    """
    field = f"spec.models.{name}.baseUrl"
    if any(not (0x21 <= ord(c) <= 0x7E) for c in base_url) or "\\" in base_url:
        raise ManifestError(field, "holds a space, backslash, control or non-ASCII character")
    parts = urlsplit(base_url)
    if "@" in parts.netloc:
        raise ManifestError(field, "holds user info (user@host); put the key in apiKeyEnv, never in the URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ManifestError(field, "has an invalid port") from None
    host = (parts.hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not host or host.startswith("*") or not _HOST_NAME.match(host):
        raise ManifestError(field, f"{host!r} is not a valid host name")
    return host


def _host_matches(host: str, pattern: HostPattern) -> bool:
    if isinstance(pattern, str):
        if pattern.startswith("*."):
            return host.endswith(pattern[1:])
        return host == pattern
    try:
        return ipaddress.ip_address(host) in pattern
    except ValueError:
        return False


@dataclass(frozen=True)
class ModelAccess:
    """What the admin (runner Pod env, from chart values) or the local user (their env) granted.

    Attributes:
        key_envs: variable names ``apiKeyEnv`` may name beyond the built-in ones.
        hosts: hosts a key may be sent to (``baseUrl``), :data:`LOOPBACK` always included.
        strict_hosts: every ``baseUrl`` host must be in ``hosts``, keyed or not.
    """

    key_envs: frozenset[str] = frozenset()
    hosts: tuple[HostPattern, ...] = ()
    strict_hosts: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, extra_key_envs: Iterable[str] = ()) -> ModelAccess:
        """The grants in ``env`` (:data:`KEY_ENV_ALLOWLIST_ENV`, :data:`HOST_ALLOWLIST_ENV`,
        :data:`HOST_STRICT_ENV`), plus ``extra_key_envs`` (names a caller passed in code;
        ``AGENTENSOR_*`` ones are left out, as in the allow-list).

        Raises:
            ManifestError: field ``$<VARIABLE>`` when an entry is malformed.
        """
        keys = {n for n in extra_key_envs if re.match(ENV_VAR_PATTERN, n) and not n.startswith(RESERVED_PREFIX)}
        for entry in _split(env.get(KEY_ENV_ALLOWLIST_ENV)):
            try:
                keys.add(check_key_env_grant(entry))
            except ValueError as e:
                raise ManifestError(f"${KEY_ENV_ALLOWLIST_ENV}", str(e)) from None
        hosts: list[HostPattern] = []
        for entry in _split(env.get(HOST_ALLOWLIST_ENV)):
            try:
                hosts.append(parse_host_pattern(entry))
            except ValueError as e:
                raise ManifestError(f"${HOST_ALLOWLIST_ENV}", str(e)) from None
        strict = (env.get(HOST_STRICT_ENV) or "").strip().lower() in _TRUE
        return cls(frozenset(keys), tuple(hosts), strict)

    def host_allowed(self, host: str) -> bool:
        """True for a loopback host or one matching an entry of ``hosts``."""
        patterns = [parse_host_pattern(p) for p in LOOPBACK] + list(self.hosts)
        return any(_host_matches(host, p) for p in patterns)

    def check(self, name: str, spec: ModelSpec) -> str | None:
        """Check ``spec.models[name]`` against the grants, before any client exists.

        Returns:
            The variable to read the key from, or ``None`` (the provider client's own default).

        Raises:
            ManifestError: ``spec.models.<name>.apiKeyEnv`` (or ``.apiKeySecretRef``) naming a
                variable that was not granted; ``spec.models.<name>.baseUrl`` for a host that may
                not receive the key, or any host off the list in strict mode. Messages name
                variables and hosts, never a value.
        """
        host = base_url_host(name, spec.base_url) if spec.base_url else None
        listed = host is None or self.host_allowed(host)
        if not listed and self.strict_hosts:
            raise ManifestError(
                f"spec.models.{name}.baseUrl",
                f"host {host!r} is not on the model host allow-list, and only listed hosts may be used here "
                f"({HOST_STRICT_ENV}); ask the admin to add it (chart runner.modelHosts; locally {HOST_ALLOWLIST_ENV})",
            )
        var = api_key_env_name(name, spec)
        provider = spec.model.split(":", 1)[0]
        if var is not None:
            self._check_variable(name, spec, var, provider)
        if listed or (var is None and provider not in PROVIDER_KEY_ENVS):
            return var
        what = f"the API key in {var}" if var else f"the {provider} client's default key"
        raise ManifestError(
            f"spec.models.{name}.baseUrl",
            f"{what} may go only to the provider's own endpoint (no baseUrl) or to an allow-listed host, and "
            f"{host!r} is not one (loopback always is); the admin lists hosts in chart runner.modelHosts, "
            f"locally export {HOST_ALLOWLIST_ENV}={host}",
        )

    def _check_variable(self, name: str, spec: ModelSpec, var: str, provider: str) -> None:
        field = f"spec.models.{name}.{'apiKeyEnv' if spec.api_key_env else 'apiKeySecretRef'}"
        own = default_api_key_env(name)
        if var == own:
            return
        if var.upper().startswith(RESERVED_PREFIX):
            raise ManifestError(
                field,
                f"{var} is never read as an API key: {RESERVED_PREFIX}* variables hold the runner's own settings "
                f"and secrets; the only one a model may use is its own {own}",
            )
        if var in PROVIDER_KEY_ENVS.get(provider, frozenset()) or var in self.key_envs:
            return
        known = sorted(PROVIDER_KEY_ENVS.get(provider, frozenset()))
        raise ManifestError(
            field,
            f"{var} is not a granted API key variable (for {provider}: {', '.join(known) or 'none built in'}, "
            f"{own}, or a name the admin lists in chart runner.modelKeyEnvs; locally export "
            f"{KEY_ENV_ALLOWLIST_ENV}={var} to grant it)",
        )
