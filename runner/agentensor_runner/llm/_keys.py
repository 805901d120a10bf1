"""API keys: where they come from, and keeping them out of everything we write.

A key is read once from the environment variable named by the model spec
(:func:`agentensor_api.api_key_env_name`) and kept as a ``pydantic.SecretStr``. It is handed to
the LangChain client and to :class:`Redactor`, nothing else: it is not in the spec, the
status, the database, the cache key (LangChain serialises it as a secret id) or the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from agentensor_api import ManifestError, ModelSpec, api_key_env_name

REDACTED = "***"


def resolve_api_key(name: str, spec: ModelSpec, env: Mapping[str, str] | None = None) -> SecretStr | None:
    """The API key of ``spec.models[name]``.

    Returns:
        The key, or ``None`` when the spec names no variable (the provider client then reads
        its own default, e.g. ``OPENAI_API_KEY``).

    Raises:
        ManifestError: field ``spec.models.<name>.apiKeyEnv`` (or ``.apiKeySecretRef``) when the
            variable is unset or empty; the message names the variable, never a value.
    """
    var = api_key_env_name(name, spec)
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
