"""Which SSH host keys usersync trusts: known_hosts files, a pinned fingerprint, or a first
use that the user asked to trust. The decision is made here; sftp.py only asks."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from usersync.errors import HostKeyError, HostKeyMismatch, UnknownHostKey, UsageError

# Host key algorithms by key type, in OpenSSH's order of preference: a server offers the key
# that `ssh` shows and that its administrator's `ssh-keygen -lf` names, the ed25519 one where
# it has one (asyncssh alone asks for RSA first). RSA's signature forms go together.
KEY_TYPES: tuple[tuple[str, ...], ...] = (
    ("ssh-ed25519",),
    ("ecdsa-sha2-nistp256",),
    ("ecdsa-sha2-nistp384",),
    ("ecdsa-sha2-nistp521",),
    ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
)
HOST_KEY_ALGS = tuple(alg for algs in KEY_TYPES for alg in algs)


@dataclass(frozen=True)
class HostKeyPolicy:
    """How to check a server's host key.

    `known_hosts`: OpenSSH known_hosts files to trust (missing files are fine).
    `fingerprint`: a pinned `SHA256:...` fingerprint that is trusted as well.
    `accept_new`: trust a host that no file knows yet (never a changed key), and remember its
    key in `remember_in`.
    """

    known_hosts: tuple[Path, ...] = ()
    fingerprint: str | None = None
    accept_new: bool = False
    remember_in: Path | None = None


def host_entry_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def normalize_fingerprint(value: str) -> str:
    """`SHA256:abc=` or `abc` -> `SHA256:abc` (OpenSSH prints it without base64 padding)."""
    value = value.strip()
    if value.upper().startswith("SHA256:"):
        value = value[len("SHA256:") :]
    return "SHA256:" + value.rstrip("=")


_SHA256_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def check_fingerprint(value: str, what: str = "--fingerprint") -> str:
    """A fingerprint someone typed, normalized; UsageError if it cannot be one."""
    normalized = normalize_fingerprint(value)
    if not _SHA256_FINGERPRINT.fullmatch(normalized):
        raise UsageError(
            f"{what}: {value.strip()[:80]!r} is not a SHA256 host key fingerprint; give it as "
            "ssh-keygen -lf prints it, e.g. SHA256:Jx0lV2bYbQ8f... (43 characters after SHA256:)"
        )
    return normalized


class PortExactKnownHosts(asyncssh.SSHKnownHosts):
    """known_hosts entries matched as OpenSSH matches them: for a server on a port other than
    22, only its `[host]:port` entries. asyncssh falls back to the host's entries without a
    port, which are for port 22: another server on the same host, with keys of its own, then
    looked like a changed key ("WARNING ... CHANGED"), and first-use trust was refused."""

    def match(self, host: str, addr: str, port: int | None) -> Any:
        return self._match(host, addr, port)


@dataclass
class HostKeyCheck:
    """One connection's host-key decision; `validate` is called by asyncssh when no trusted
    known_hosts entry matched the key the server offered."""

    policy: HostKeyPolicy
    host: str
    port: int
    known: PortExactKnownHosts = field(init=False)
    host_is_known: bool = field(init=False)
    offered: str | None = None
    offered_type: str | None = None  # the offered key's algorithm, e.g. "ssh-ed25519"
    accepted_new_key: Any = None

    def __post_init__(self) -> None:
        text = "".join(_read_text(path) for path in self.policy.known_hosts)
        self.known = PortExactKnownHosts(text)
        # addr "": asyncssh reads the host as an address itself when it is one.
        trusted, ca_keys, *_ = self.known.match(
            self.host, "", None if self.port == 22 else self.port
        )
        self.host_is_known = bool(trusted or ca_keys)

    def algorithms(self) -> Sequence[str]:
        """The host key algorithms to ask for: those of the host's trusted keys when
        known_hosts knows it (asyncssh picks them when given none, but not for "default"),
        else OpenSSH's order."""
        return () if self.host_is_known else HOST_KEY_ALGS

    def other_key_types(self) -> list[tuple[str, ...]]:
        """The key types a pinned fingerprint may still name once the key the server offered
        did not match: a server has several keys, and the pin may be any one of them."""
        if self.policy.fingerprint is None or self.offered_type is None:
            return []
        return [algs for algs in KEY_TYPES if self.offered_type not in algs]

    def pinned(self, key: Any) -> bool:
        pin = self.policy.fingerprint
        return pin is not None and normalize_fingerprint(pin) == key.get_fingerprint("sha256")

    def validate(self, key: Any) -> bool:
        self.offered = str(key.get_fingerprint("sha256"))
        self.offered_type = key.algorithm.decode("ascii")
        if self.pinned(key):
            return True
        pinned = self.policy.fingerprint
        if self.policy.accept_new and not self.host_is_known and pinned is None:
            self.accepted_new_key = key
            return True
        return False

    def remember(self) -> None:
        """Append a key accepted on first use to the policy's known_hosts file."""
        if self.accepted_new_key is None or self.policy.remember_in is None:
            return
        path = self.policy.remember_in
        path.parent.mkdir(parents=True, exist_ok=True)
        line = self.accepted_new_key.export_public_key("openssh").decode().strip()
        entry = f"{host_entry_name(self.host, self.port)} {line}\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(entry)

    def refusal(self) -> HostKeyError:
        """The error to raise when the handshake failed on the host key."""
        offered = self.offered or "unknown"
        where = host_entry_name(self.host, self.port)
        if self.policy.fingerprint is not None:
            return HostKeyMismatch(
                f"the host key of {where} does not match the pinned fingerprint "
                f"{normalize_fingerprint(self.policy.fingerprint)}; the server offered "
                f"{offered}. If the server's key really changed, check it with its "
                "administrator and pin the new fingerprint.",
                fingerprint=offered,
            )
        if self.host_is_known:
            return HostKeyMismatch(
                f"WARNING: the host key of {where} has CHANGED: the server offered {offered}, "
                "which does not match the key in known_hosts. This can mean someone is "
                "intercepting the connection. If the change is expected, remove the old entry "
                f"(ssh-keygen -R '{where}') and connect again.",
                fingerprint=offered,
            )
        return UnknownHostKey(
            f"the host key of {where} is not known: the server offered {offered}. Check that "
            "fingerprint with the server's administrator, then pass --fingerprint "
            f"{offered} (or --accept-new-host-key to trust it on first use and remember it).",
            fingerprint=offered,
        )


def _read_text(path: Path) -> str:
    """A known_hosts file's text; bytes that are not UTF-8 (in a comment, say) cannot match a
    host and are replaced instead of failing every connection."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text if text.endswith("\n") or not text else text + "\n"
