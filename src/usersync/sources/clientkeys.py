"""SSH key pairs for logging in to SFTP servers: the ones usersync makes, so that nobody has
to handle a private key (the server's administrator adds the public key to the account's
`~/.ssh/authorized_keys`), and the public half of any stored private key, to show.

    private_key = make_private_key("acme-exports")   # OpenSSH text, unencrypted
    public_key_of(private_key, passphrase=None)              # "ssh-ed25519 AAAA... usersync ..."
"""

from __future__ import annotations

import asyncssh

KEY_TYPE = "ssh-ed25519"  # short, fast, and accepted by every OpenSSH since 6.5 (2014)


def make_private_key(connection_name: str) -> str:
    """A new ed25519 private key in OpenSSH format, not encrypted (it is stored encrypted),
    for the connection `connection_name` (its comment: "usersync NAME")."""
    key = asyncssh.generate_private_key(KEY_TYPE, comment=f"usersync {connection_name}")
    return bytes(key.export_private_key("openssh")).decode("ascii")


def public_key_of(private_key: str, passphrase: str | None) -> str | None:
    """The OpenSSH public key line of `private_key`, or None if it cannot be read (the
    connection test says why when it logs in)."""
    try:
        key = asyncssh.import_private_key(private_key, passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError):
        return None
    # The comment after the key may be any text (a connection's name, "josé@laptop").
    return bytes(key.export_public_key("openssh")).decode("utf-8", "replace").strip()
