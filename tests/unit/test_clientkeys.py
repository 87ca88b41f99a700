"""The key pairs usersync makes for SFTP logins, and the public half of a private key."""

from __future__ import annotations

import asyncssh

from usersync.sources.clientkeys import make_private_key, public_key_of


def test_a_made_key_is_a_new_unencrypted_ed25519_key_whose_public_half_names_it() -> None:
    first, second = make_private_key("acme"), make_private_key("acme")

    assert first != second
    assert first.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    key = asyncssh.import_private_key(first)  # no passphrase needed
    assert key.algorithm == b"ssh-ed25519"
    public = public_key_of(first, None)
    assert public is not None
    assert public.startswith("ssh-ed25519 ")
    assert public.endswith(" usersync acme")
    assert public.split()[1] == key.export_public_key().decode().split()[1]


def test_an_encrypted_key_gives_its_public_half_only_with_its_passphrase() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="mine")
    encrypted = key.export_private_key("openssh", passphrase="pass").decode()

    assert public_key_of(encrypted, "pass") == key.export_public_key().decode().strip()
    assert public_key_of(encrypted, None) is None
    assert public_key_of(encrypted, "wrong") is None
    assert public_key_of("not a key", None) is None


def test_a_key_whose_comment_is_not_ascii_gives_its_public_half() -> None:
    made = make_private_key("café 日本")
    key = asyncssh.generate_private_key("ssh-ed25519", comment="josé@laptop")
    theirs = key.export_private_key("openssh").decode()

    assert str(public_key_of(made, None)).endswith(" usersync café 日本")
    assert str(public_key_of(theirs, None)).endswith(" josé@laptop")
