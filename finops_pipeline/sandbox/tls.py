"""A throwaway certificate authority for the HTTPS stand-ins, made fresh at start, never trusted globally.

Real clients (azure-identity, MSAL, requests) keep verifying TLS as they do in production; the tests
and the demo only add this CA to what they trust, through the standard REQUESTS_CA_BUNDLE variable,
with a bundle that also holds the public roots (certifi) so nothing else in the process breaks.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "finops_pipeline sandbox"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class LocalCA:
    """A CA key and certificate, and one server certificate for 127.0.0.1 / localhost signed by it."""

    def __init__(self, directory: Path | None = None):
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="finops-sandbox-ca-")
        self.directory = Path(directory or self._tmp.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("finops_pipeline sandbox CA (throwaway)")
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca_file = self.directory / "sandbox-ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(pem))
        self.cert_file = self.directory / "server.pem"
        self.cert_file.write_bytes(server_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
        self.key_file = self.directory / "server-key.pem"
        self.key_file.write_bytes(
            server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.key_file.chmod(0o600)

    def bundle(self) -> Path:
        """The public roots plus this CA: what REQUESTS_CA_BUNDLE should name while a stand-in runs."""
        import certifi

        path = self.directory / "ca-bundle.pem"
        path.write_text(Path(certifi.where()).read_text(encoding="utf-8") + "\n" + self.ca_file.read_text(encoding="utf-8"), encoding="utf-8")
        return path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
