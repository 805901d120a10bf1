"""API keys: where they come from, and keeping them out of everything we write.

A key is read once from the environment variable named by the model spec
(:func:`agentensor_api.api_key_env_name`), only after :meth:`agentensor_api.ModelAccess.check`
has found that variable granted and the model's ``baseUrl`` a destination the key may go to,
and kept as a ``pydantic.SecretStr``. It is handed to the LangChain client and to
:class:`Redactor`, nothing else: it is not in the spec, the status, the database, the cache key
(LangChain serialises it as a secret id) or the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from agentensor_api import ManifestError, ModelAccess, ModelSpec

REDACTED = "***"


def model_access(env: Mapping[str, str] | None = None) -> ModelAccess:
    """The grants of this process: from ``os.environ``, plus every name of an explicit ``env``
    (a caller who passes keys in code grants them; the destination rule still applies).

    Raises:
        ManifestError: a malformed grant variable (``$AGENTENSOR_MODEL_HOST_ALLOWLIST``...).
    """
    return ModelAccess.from_env(os.environ, extra_key_envs=env.keys() if env is not None else ())


def resolve_api_key(
    name: str, spec: ModelSpec, env: Mapping[str, str] | None = None, access: ModelAccess | None = None
) -> SecretStr | None:
    """The API key of ``spec.models[name]``, once the grants allow it (see :func:`model_access`).

    Returns:
        The key, or ``None`` when the spec names no variable (the provider client then reads
        its own default, e.g. ``OPENAI_API_KEY``, which the grants allowed for this destination).

    Raises:
        ManifestError: field ``spec.models.<name>.apiKeyEnv`` (or ``.apiKeySecretRef``) when the
            variable is not granted, unset or empty; ``spec.models.<name>.baseUrl`` when the key
            may not go to that host (:meth:`agentensor_api.ModelAccess.check`). Messages name
            the variable, never a value.
    """
    var = (access or model_access(env)).check(name, spec)
    if var is None:
        return None
    value = (os.environ if env is None else env).get(var, "")
    if not value.strip():
        field = "apiKeyEnv" if spec.api_key_env else "apiKeySecretRef"
        hint = (
            f"export {var}=... before running locally"
            if spec.api_key_env
            else f"the operator sets {var} from the Secret; locally, export it or set apiKeyEnv"
        )
        raise ManifestError(f"spec.models.{name}.{field}", f"environment variable {var} is not set ({hint})")
    return SecretStr(value.strip())


class Redactor:
    """Replaces every known secret value in a text with ``***``.

    Secrets shorter than 4 characters are ignored (they would redact ordinary words).
    """

    def __init__(self, secrets: Iterable[SecretStr] = ()) -> None:
        self._values: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: SecretStr | None) -> None:
        if secret is None:
            return
        value = secret.get_secret_value()
        if len(value) >= 4 and value not in self._values:
            self._values.append(value)
            self._values.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text
