"""The one normaliser of corpus text: what is embedded, returned and checksummed."""

from __future__ import annotations

import unicodedata

from agentensor_api import ManifestError


def normalize_text(text: str, *, field: str, where: str) -> str:
    """``text`` in Unicode NFC with ``\\n`` line ends, trimmed.

    Raises:
        ManifestError: naming ``field`` and ``where`` (a line, a document) when ``text`` holds NUL
            or an unpaired surrogate (PostgreSQL ``TEXT`` can store neither).
    """
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ManifestError(field, f"{where} holds a NUL character or invalid UTF-8")
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
