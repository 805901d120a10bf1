"""``spec.runner.env``: the runner container's extra variables, and the names a run may not set.

A variable is a literal ``value`` or a ``valueFrom`` Secret or ConfigMap key. Names that change
what code the runner loads, where its traffic goes or whom it trusts over TLS are refused, each
with the reason (:func:`denied_env_name`), here and for ``apiKeyEnv`` with ``apiKeySecretRef``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ._base import ApiModel
from ._pod_patterns import DNS_SUBDOMAIN_PATTERN, ENV_NAME_PATTERN

DENIED_ENV_NAMES: dict[str, str] = {
    "PATH": "decides which programs run",
    "HOME": "decides which user configuration files (~/.local, ~/.netrc, ~/.config) are read",
    "SHELL": "decides which shell runs subcommands",
    "BASH_ENV": "is a script every non-interactive bash runs",
    "ENV": "is a script every POSIX shell runs",
    "IFS": "changes how shells split words",
    "GCONV_PATH": "loads glibc character-set modules (shared libraries)",
    "GETCONF_DIR": "changes glibc's getconf helpers",
    "GLIBC_TUNABLES": "tunes glibc's loader and allocator",
    "HOSTALIASES": "redirects host names",
    "LOCALDOMAIN": "changes DNS resolution",
    "RES_OPTIONS": "changes DNS resolution",
    "NLSPATH": "loads message catalogues",
    "TMPDIR": "moves temporary files off the operator's /tmp",
    "NETRC": "supplies HTTP credentials from a file",
    "REQUESTS_CA_BUNDLE": "replaces the trusted TLS certificate authorities",
    "CURL_CA_BUNDLE": "replaces the trusted TLS certificate authorities",
    "NODE_OPTIONS": "loads code into Node.js",
    "PERL5LIB": "loads Perl code",
    "PERL5OPT": "loads Perl code",
    "JAVA_TOOL_OPTIONS": "loads Java agents",
    "KRB5_CONFIG": "changes Kerberos trust",
    "KRB5CCNAME": "supplies Kerberos credentials",
}
"""Env names ``spec.runner.env`` (and ``apiKeyEnv`` with ``apiKeySecretRef``) may not set, compared
upper-cased, each with why: they change what code the runner process (Python, its loader, a
shell it starts) loads, where its network traffic goes, whom it trusts over TLS, or what the
operator set. The reason is part of the refusal message."""

DENIED_ENV_PREFIXES: dict[str, str] = {
    "AGENTENSOR_": "is set by the operator (database URL, entrypoint allow-list, outage settings)",
    "PYTHON": "changes what the Python interpreter loads (PYTHONPATH, PYTHONSTARTUP, PYTHONHOME...)",
    "LD_": "changes what the dynamic loader loads (LD_PRELOAD, LD_LIBRARY_PATH...)",
    "DYLD_": "changes what the dynamic loader loads",
    "PG": "is read by libpq (host, password file, service file, TLS files of the database connection)",
    "SSL": "replaces TLS trust files or logs TLS keys (SSL_CERT_FILE, SSL_CERT_DIR, SSLKEYLOGFILE)",
    "OPENSSL_": "loads OpenSSL configuration and engines (shared libraries)",
    "HF_": "changes where Hugging Face models and code come from (HF_ENDPOINT, HF_HOME, HF_MODULES_CACHE...)",
    "TRANSFORMERS_": "changes where Transformers models and code come from",
    "SENTENCE_TRANSFORMERS_": "changes where sentence-transformers models come from",
    "TORCH": "changes where torch loads models and extensions from",
    "PYTORCH": "changes how torch loads and runs code",
    "MPL": "makes matplotlib load a configuration file or a backend module (MPLBACKEND=module://...)",
    "PSYCOPG": "changes which psycopg implementation loads",
    "LANGCHAIN_": "sends traces of every model call (prompts, cases, outputs) to a tracing service",
    "LANGSMITH_": "sends traces of every model call (prompts, cases, outputs) to a tracing service",
    "OTEL_": "sends telemetry elsewhere or loads OpenTelemetry plugins",
    "LOCPATH": "loads locale files from another folder",
    "XDG_": "moves configuration and cache folders",
    "GIT_": "changes what git runs",
    "COV_CORE_": "makes pytest-cov's startup hook run code",
    "COVERAGE_": "makes coverage's startup hook run code",
}
"""Env name prefixes refused the same way (upper-cased): interpreter, loader, libpq, TLS, model
hub and cache variables. ``HF_TOKEN`` alone is allowed (a Hugging Face read token changes no code)."""

DENIED_ENV_SUFFIXES: dict[str, str] = {
    "_PROXY": "routes network traffic through a proxy (HTTP_PROXY, https_proxy, ALL_PROXY, NO_PROXY...)",
    "_BASE_URL": "sends model requests, and their API key, elsewhere than spec.models.*.baseUrl",
    "_API_BASE": "sends model requests, and their API key, elsewhere than spec.models.*.baseUrl",
    "_ENDPOINT": "sends requests (model, tracing, hub) elsewhere",
    "_CA_BUNDLE": "replaces the trusted TLS certificate authorities",
}
"""Env name suffixes refused the same way (upper-cased)."""

ALLOWED_ENV_NAMES = frozenset({"HF_TOKEN"})
"""Names allowed although a prefix above matches them."""


def denied_env_name(name: str) -> str | None:
    """Why ``spec.runner.env`` may not set variable ``name``, or ``None`` when it may.

    Compared upper-cased: the consumers of several of these (proxies, ``https_proxy``) read either
    case, and no legitimate variable differs from a denied one by case alone.
    """
    upper = name.upper()
    if upper in ALLOWED_ENV_NAMES:
        return None
    if upper in DENIED_ENV_NAMES:
        return DENIED_ENV_NAMES[upper]
    for prefix, why in DENIED_ENV_PREFIXES.items():
        if upper.startswith(prefix):
            return why
    for suffix, why in DENIED_ENV_SUFFIXES.items():
        if upper.endswith(suffix) or upper == suffix.lstrip("_"):
            return why
    return None


class KeySelector(ApiModel):
    """A key of a Secret or ConfigMap in the run's namespace."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="Secret or ConfigMap name.")
    key: str = Field(min_length=1, max_length=253, description="Key in its data.")
    optional: bool | None = Field(default=None, description="Start the Pod even if it is missing.")


class EnvVarSource(ApiModel):
    """Where an env value comes from: exactly one of secretKeyRef and configMapKeyRef.

    The value is read by the kubelet; it never appears in the manifest, the run's status, the
    operator's logs or the database.
    """

    secret_key_ref: KeySelector | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeySelector | None = Field(default=None, description="A key of a ConfigMap.")

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("set exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(ApiModel):
    """An environment variable of the runner container: a literal ``value`` or ``valueFrom``."""

    name: str = Field(
        pattern=ENV_NAME_PATTERN,
        max_length=253,
        description="Variable name. Refused: names that change what the runner loads or where its traffic "
        "goes (AGENTENSOR_*, PYTHON*, LD_*, PG*, SSL*, HF_* but HF_TOKEN, *_PROXY, *_BASE_URL, PATH, HOME...).",
    )
    value: str | None = Field(default=None, description="Literal value; for secrets use valueFrom.secretKeyRef.")
    value_from: EnvVarSource | None = Field(default=None, description="A Secret or ConfigMap key.")

    @model_validator(mode="after")
    def _checks(self) -> EnvVar:
        why = denied_env_name(self.name)
        if why is not None:
            raise ValueError(f"{self.name}: a run may not set this variable: it {why}")
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"{self.name}: set value or valueFrom, not both")
        return self
