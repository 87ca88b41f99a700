"""TLS for the stores that speak it (FTPS, S3 over https): the context that checks a
server's certificate, and the checks of a `--ca-file` (or `ca_pem`) the user gave."""

from __future__ import annotations

import ssl

from usersync.errors import UsageError
from usersync.sources.urls import TlsTrust

# What to do about a certificate that fails the check, said on every surface that meets it:
# the CLI, and a sync's runs and connection tests in the web UI and REST API.
TRUST_YOUR_CA = (
    "If it comes from your own certificate authority, give that authority's certificate: "
    "--ca-file PATH on the command line, the connection's Certificate authority file in the "
    "web UI, or its ca_pem option in the REST API."
)


def tls_context(trust: TlsTrust) -> ssl.SSLContext:
    """A client TLS context that checks certificates (system authorities, or `ca_file`'s),
    or checks nothing when `trust.verify` is False."""
    if not trust.verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=trust.ca_file)
    except FileNotFoundError:
        raise UsageError(f"--ca-file {trust.ca_file}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(
            f"--ca-file {trust.ca_file} is not a PEM file of CA certificates ({exc})"
        ) from None
