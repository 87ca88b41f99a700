"""SecretBox: secrets sealed at rest with a key from USERSYNC_SECRET_KEY or the data folder."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from usersync.config import load_settings
from usersync.secretbox import SecretBox, SecretKeyError

SECRETS = {"password": "pa55 wörd", "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n..."}


def new_key() -> str:
    return Fernet.generate_key().decode()


def box_with(tmp_path: Path, secret_key: str | None = None) -> SecretBox:
    env = {"USERSYNC_DATA_DIR": str(tmp_path / "data")}
    if secret_key is not None:
        env["USERSYNC_SECRET_KEY"] = secret_key
    return SecretBox.from_settings(load_settings(env))


def test_round_trip(tmp_path: Path) -> None:
    box = box_with(tmp_path, new_key())
    sealed = box.seal(SECRETS)
    assert "pa55" not in sealed
    assert sealed.isascii()
    assert box.open(sealed) == SECRETS
    assert box.seal(SECRETS) != sealed  # a fresh IV every time
    assert not (tmp_path / "data" / "secret.key").exists()  # the variable wins


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    sealed = box_with(tmp_path).seal(SECRETS)
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    Fernet(key.strip().encode())  # a valid Fernet key

    assert box_with(tmp_path).open(sealed) == SECRETS
    assert key_file.read_text() == key
    assert box_with(tmp_path, key.strip()).open(sealed) == SECRETS


def test_two_keys_open_old_secrets_and_rotate_to_the_first(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    sealed = box_with(tmp_path, old).seal(SECRETS)
    both = box_with(tmp_path, f"{new}, {old}")
    assert both.open(sealed) == SECRETS

    rotated = both.rotate(sealed)
    assert box_with(tmp_path, new).open(rotated) == SECRETS
    with pytest.raises(SecretKeyError):
        box_with(tmp_path, old).open(rotated)
    # New secrets are sealed with the first key.
    assert box_with(tmp_path, new).open(both.seal(SECRETS)) == SECRETS


def test_wrong_key_says_how_to_fix_it(tmp_path: Path) -> None:
    sealed = box_with(tmp_path, new_key()).seal(SECRETS)
    with pytest.raises(SecretKeyError) as caught:
        box_with(tmp_path, new_key()).open(sealed)
    message = caught.value.message
    assert "cannot be decrypted" in message
    assert "USERSYNC_SECRET_KEY" in message
    assert "old one after it" in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "value",
    ["not-a-key", "c2hvcnQ=", f"{Fernet.generate_key().decode()},nope", "é" * 44],
)
def test_malformed_key_variable_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(SecretKeyError, match="USERSYNC_SECRET_KEY") as caught:
        box_with(tmp_path, value)
    assert "Fernet.generate_key()" in caught.value.message


def test_key_variable_without_any_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="USERSYNC_SECRET_KEY"):
        box_with(tmp_path, " , ")


def test_malformed_key_file_names_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "secret.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("garbage\n")
    with pytest.raises(SecretKeyError, match=re.escape(str(key_file))):
        box_with(tmp_path)
