"""A self-signed certificate for the zoo's TLS port, made fresh in memory.

Needs the ``cryptography`` package (a development dependency of shoal); the
zoo serves no TLS port without it. The certificate names the address it is
served on, so the only thing wrong with it is that nobody signed it: a client
that verifies must fail with a certificate error, one that does not must get
the page.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile

__all__ = ["self_signed_context", "tls_available"]


def tls_available() -> bool:
    """Whether a certificate can be made here (``cryptography`` is installed)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def self_signed_context(address: str) -> ssl.SSLContext:
    """A server context with a new self-signed certificate for ``address`` (an IP)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shoal testweb zoo (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)  # issuer == subject: self-signed
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain reads only files: write the pair to a private temporary file.
    fd, path = tempfile.mkstemp(prefix="shoal-zoo-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    return context
