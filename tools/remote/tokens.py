"""The local remote service's credentials: JWTs it signs, and the workers' TLS certificate.

Every request needs a token; its subject decides what it may call (acl.yml). buildbox sends a
token only over TLS, hence a self-signed certificate for the workers' port.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import time
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.remote.accounts import Account, write_private
from tools.remote.credential_helper import TOKEN_FILE

# A token's subject decides what it may call (acl.yml).
CLIENT_SUBJECT, WORKER_SUBJECT = "client", "worker"
# BuildGrid requires an expiry; the signing secret, not the expiry, is what bounds a token:
# remove the token directory to revoke every token.
TOKEN_LIFETIME_S = 10 * 365 * 24 * 3600


def sign(secret: str, subject: str) -> str:
    return jwt.encode(
        {"sub": subject, "exp": int(time.time()) + TOKEN_LIFETIME_S}, secret, algorithm="HS256"
    )


def client_secret(token_dir: Path) -> str:
    """The signing secret of this caller's services, made once and kept in token_dir.

    Kept, so that a Bazel server that cached the client token keeps working across restarts.
    Writes a fresh client token there for tools/remote/credential_helper.py.
    """
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = token_dir.stat()
    if status.st_uid != os.geteuid() or status.st_mode & 0o077:
        raise SystemExit(f"remote: {token_dir} must be yours and 0700 (it holds the token)")
    secret_file = token_dir / "secret"
    if not secret_file.exists():
        write_private(secret_file, secrets.token_hex(32))
    secret = secret_file.read_text().strip()
    write_private(token_dir / TOKEN_FILE, sign(secret, CLIENT_SUBJECT))
    return secret


def self_signed_tls(host: str, key_file: Path, cert_file: Path, owner: Account) -> None:
    """A key and a certificate for `host`, for the workers' TLS channel.

    buildbox sends a token only over TLS, so the workers reach BuildGrid on a second port that
    speaks TLS with this certificate, which they trust by name (--*-server-cert).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote-local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(seconds=TOKEN_LIFETIME_S))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(key_file, pem_key.decode(), owner)
    write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM).decode(), owner)
