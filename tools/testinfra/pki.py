"""Certificates and credentials for a throwaway kube-apiserver.

A self-signed CA, a serving certificate for 127.0.0.1 and the in-cluster names, the service
account signing key pair, and a static token file with one ``system:masters`` user. Made with the
``openssl`` command (Debian's, always present) so the harness needs no Python crypto package.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import secrets
import subprocess

SERVING_SANS = (
    "IP:127.0.0.1",
    "IP:10.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclasses.dataclass(frozen=True)
class Credentials:
    directory: pathlib.Path
    admin_token: str

    @property
    def ca_cert(self) -> pathlib.Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> pathlib.Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> pathlib.Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> pathlib.Path:
        return self.directory / "apiserver.key"

    @property
    def service_account_key(self) -> pathlib.Path:
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> pathlib.Path:
        return self.directory / "sa.pub"

    @property
    def token_file(self) -> pathlib.Path:
        return self.directory / "tokens.csv"


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def create(directory: pathlib.Path) -> Credentials:
    """Write a fresh CA, serving certificate, service account keys and token file."""
    directory.mkdir(parents=True, exist_ok=True)
    credentials = Credentials(directory, admin_token=secrets.token_hex(16))
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=lokistack-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=directory,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        cwd=directory,
    )
    (directory / "san.ext").write_text(
        f"subjectAltName={','.join(SERVING_SANS)}\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        "san.ext",
        "-out",
        "apiserver.crt",
        cwd=directory,
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    credentials.token_file.write_text(
        f'{credentials.admin_token},admin,admin-uid,"system:masters"\n'
    )
    credentials.token_file.chmod(0o600)
    return credentials


def kubeconfig(credentials: Credentials, server: str) -> str:
    """A kubeconfig for the admin user; JSON is valid YAML, so no YAML library is needed."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "lokistack-test",
                    "cluster": {
                        "server": server,
                        "certificate-authority": str(credentials.ca_cert),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": credentials.admin_token}}],
            "contexts": [
                {
                    "name": "lokistack-test",
                    "context": {"cluster": "lokistack-test", "user": "admin"},
                }
            ],
            "current-context": "lokistack-test",
        },
        indent=2,
    )
