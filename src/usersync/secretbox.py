"""Secrets at rest: passwords, private keys and webhook secrets are stored Fernet-encrypted.

    box = SecretBox.from_settings(settings)
    sealed = box.seal({"password": "..."})      # text for the database
    box.open(sealed) -> {"password": "..."}

The key comes from USERSYNC_SECRET_KEY (one or more Fernet keys, comma-separated: the first
encrypts, any of them decrypts, which is how a key is rotated), else from the key file
`secret.key` in the data directory, created 0600 on first use. Losing the key loses every
stored secret: back it up with the database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from usersync.config import Settings, make_private_dir
from usersync.errors import UsageError


class SecretKeyError(UsageError):
    """The key is missing, malformed, or not the one the secrets were sealed with."""


def _read_or_create_key(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    make_private_dir(path.parent)
    key = Fernet.generate_key()
    try:  # O_EXCL: two processes starting together end up with the same key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "wb") as file:
        file.write(key + b"\n")
    return key.decode("ascii")


def _fernet(key: str, where: str) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretKeyError(
            f"{where} is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
            '`python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`'
        ) from None


class SecretBox:
    def __init__(self, keys: list[Fernet]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        self._fernet = MultiFernet(keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key:
            parts = [part for part in settings.secret_key.split(",") if part.strip()]
            if not parts:
                raise SecretKeyError(
                    "USERSYNC_SECRET_KEY holds no key: give one or more Fernet keys, "
                    "comma-separated (the first encrypts), or unset it to use the key file"
                )
            return cls([_fernet(part, "USERSYNC_SECRET_KEY") for part in parts])
        path = settings.secret_key_path
        return cls([_fernet(_read_or_create_key(path), str(path))])

    def seal(self, values: Mapping[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(dict(values)).encode()).decode("ascii")

    def open(self, sealed: str) -> dict[str, str]:
        try:
            plain = self._fernet.decrypt(sealed.encode("ascii"))
        except InvalidToken:
            raise _wrong_key() from None
        values = json.loads(plain)
        assert isinstance(values, dict)
        return {str(k): str(v) for k, v in values.items()}

    def rotate(self, sealed: str) -> str:
        """The same secret sealed with the first key."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise _wrong_key() from None


def _wrong_key() -> SecretKeyError:
    return SecretKeyError(
        "a stored secret cannot be decrypted with the configured key: set "
        "USERSYNC_SECRET_KEY (or the data directory's secret.key) to the key it was "
        "saved with; when rotating, list the new key first and the old one after it"
    )
