"""SSH key pairs for logging in to SFTP servers: the ones usersync makes, so that nobody has
to handle a private key (the server's administrator adds the public key to the account's
`~/.ssh/authorized_keys`), and the public half of any stored private key, to show.

    private_key = make_private_key("acme-exports")   # OpenSSH text, unencrypted
    public_key_of(private_key, passphrase=None)              # "ssh-ed25519 AAAA... usersync ..."
"""

from __future__ import annotations

import asyncssh

from usersync.errors import UsageError

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
        return checked_public_key(private_key, passphrase)
    except UsageError:
        return None


def checked_public_key(private_key: str, passphrase: str | None) -> str:
    """The OpenSSH public key line of `private_key`; UsageError, naming the field to mend,
    if the key cannot be read with `passphrase`."""
    try:
        key = asyncssh.import_private_key(private_key, passphrase)
    except asyncssh.KeyEncryptionError:
        raise UsageError(
            "key_passphrase: it does not decrypt the private key; give the key's passphrase"
        ) from None
    except (asyncssh.KeyImportError, ValueError) as error:
        if passphrase is None and "assphrase" in str(error):
            raise UsageError(
                "key_passphrase: the private key is encrypted; give its passphrase"
            ) from None
        raise UsageError(
            f"private_key: this is not a private key usersync can read ({error}); give the "
            "key file's whole text, in OpenSSH, PEM or PuTTY format"
        ) from None
    # The comment after the key may be any text (a connection's name, "josé@laptop").
    return bytes(key.export_public_key("openssh")).decode("utf-8", "replace").strip()
