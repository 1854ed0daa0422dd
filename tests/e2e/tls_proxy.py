"""Debian's nginx serving ``deploy/nginx/poundcake.conf`` on loopback, with a self-signed
certificate made by ``openssl``, for the HTTPS tests.

The shipped site file is what runs. :func:`render_site` changes exactly these lines of it, each
of which must appear once: the two ``listen`` lines (to free loopback ports), the HTTP redirect's
target (to carry the HTTPS port, which is 443 and implied on a host), the certificate and key
paths, and the four upstream ``server`` lines (to where the test's services listen). Around it,
:func:`main_config` stands in for Debian's ``/etc/nginx/nginx.conf``: a master that stays in the
foreground (``daemon off``) with its pid file, logs and temporary files in the test's directory.
No system nginx service is started or touched.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.support.st2cli import free_port
from tests.paths import REPOSITORY

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
SITE = REPOSITORY / "deploy" / "nginx" / "poundcake.conf"
SHIPPED_CERTIFICATE = "/etc/ssl/st2/st2.crt"
SHIPPED_KEY = "/etc/ssl/st2/st2.key"
SHIPPED_UPSTREAMS = {
    "poundcake_api": "127.0.0.1:8080",
    "st2api": "127.0.0.1:9101",
    "st2auth": "127.0.0.1:9100",
    "st2stream": "127.0.0.1:9102",
}


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""

    certificate: Path
    key: Path

    def spki_sha256(self) -> str:
        """The base64 SHA-256 of its public key, as Chromium's
        ``--ignore-certificate-errors-spki-list`` names a certificate to trust."""
        loaded = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        der = loaded.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context that trusts this certificate only."""
        return ssl.create_default_context(cafile=str(self.certificate))


def self_signed(directory: Path, name: str = "st2") -> Certificate:
    """Make a self-signed certificate with ``openssl``, as deploy/nginx/README.md does."""
    directory.mkdir(parents=True, exist_ok=True)
    certificate, key = directory / f"{name}.crt", directory / f"{name}.key"
    made = subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return Certificate(certificate, key)


@dataclass(frozen=True)
class Ports:
    http: int
    https: int


def render_site(
    text: str, *, ports: Ports, certificate: Certificate, upstreams: dict[str, str]
) -> str:
    """The shipped site with only its ports, certificate paths and upstream servers changed."""
    replacements = {
        "listen 80 default_server;": f"listen 127.0.0.1:{ports.http} default_server;",
        "listen 443 ssl http2 default_server;": (
            f"listen 127.0.0.1:{ports.https} ssl http2 default_server;"
        ),
        "return 308 https://$host$request_uri;": (
            f"return 308 https://$host:{ports.https}$request_uri;"
        ),
        SHIPPED_CERTIFICATE: str(certificate.certificate),
        SHIPPED_KEY: str(certificate.key),
    }
    for name, address in SHIPPED_UPSTREAMS.items():
        shipped = f"upstream {name} {{\n  server {address};\n}}"
        replacements[shipped] = f"upstream {name} {{\n  server {upstreams[name]};\n}}"
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{SITE} no longer has {old!r} exactly once"
        text = text.replace(old, new)
    return text


def main_config(directory: Path, site: Path) -> str:
    """Debian's nginx.conf in miniature: everything the master writes stays in ``directory``."""
    temporary = directory / "temp"
    lines = [
        "daemon off;",
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {directory / 'error.log'} info;",
        "events { worker_connections 256; }",
        "http {",
        f"  access_log {directory / 'access.log'};",
        *(
            f"  {kind}_temp_path {temporary / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        f"  include {site};",
        "}",
    ]
    if os.geteuid() == 0:
        # Workers would otherwise run as nobody, who cannot enter the test's directory.
        lines.insert(0, f"user {getpass.getuser()};")
    return "\n".join(lines) + "\n"


@dataclass
class Proxy:
    """nginx running the shipped site."""

    directory: Path
    ports: Ports
    certificate: Certificate

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.ports.https}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    def access_log(self) -> str:
        return (self.directory / "access.log").read_text(errors="replace")


def _command(directory: Path, *extra: str) -> list[str]:
    config = directory / "nginx.conf"
    return [
        NGINX,
        "-p",
        str(directory),
        "-c",
        str(config),
        "-e",
        str(directory / "error.log"),
        *extra,
    ]


def _accepting_tls(process: subprocess.Popen[bytes], proxy: Proxy, timeout: float = 30) -> bool:
    """True once nginx completes a TLS handshake on its HTTPS port; False if it exited."""
    context = proxy.certificate.client_context()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            address = ("127.0.0.1", proxy.ports.https)
            with (
                socket.create_connection(address, timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@contextmanager
def running_nginx(
    directory: Path, certificate: Certificate, upstreams: dict[str, str], attempts: int = 3
) -> Iterator[Proxy]:
    """Run nginx in the foreground on free loopback ports until the block ends.

    The configuration is checked with ``nginx -t`` first. Ports are chosen just before the
    start; if another process bound one first, nginx exits and new ports are tried.
    """
    (directory / "temp").mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        proxy = Proxy(directory, Ports(http=free_port(), https=free_port()), certificate)
        site = directory / "poundcake.conf"
        site.write_text(
            render_site(
                SITE.read_text(), ports=proxy.ports, certificate=certificate, upstreams=upstreams
            )
        )
        (directory / "nginx.conf").write_text(main_config(directory, site))
        checked = subprocess.run(
            _command(directory, "-t"), capture_output=True, text=True, timeout=30, check=False
        )
        assert checked.returncode == 0, checked.stderr
        with (directory / "nginx.out").open("ab") as out:
            process = subprocess.Popen(
                _command(directory), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        if _accepting_tls(process, proxy):
            break
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    else:
        log = (directory / "error.log").read_text(errors="replace")
        raise AssertionError(f"nginx did not start in {attempts} attempts:\n{log[-2000:]}")
    try:
        yield proxy
    finally:
        # SIGTERM: nginx's fast shutdown (a graceful one would wait for open event streams).
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
