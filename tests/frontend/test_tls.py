"""The web client over HTTPS (issue 6, item 8): Daphne's TLS endpoint as the README shows it,
a page loaded from https:// signs in and registers over wss:// on the same port.

A browser refuses ws:// from an https:// page (mixed content), so registering at all proves
the page took the wss:// URL. The certificate is a throwaway self-signed one.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import expect

from tests.frontend.webclient import Client
from tests.serverproc import ROOT, provision


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture
def https_url(tmp_path):
    """Daphne serving the project over TLS only, on a free port of 127.0.0.1."""
    proc = provision(tmp_path, [("alice@localhost", "secret")])
    key, cert = self_signed(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-e", endpoint, "presence_project.asgi:application"],
        cwd=ROOT,
        env=proc.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if daphne.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(daphne.communicate()[0]) from None
                time.sleep(0.1)
        yield f"https://127.0.0.1:{port}"
    finally:
        daphne.terminate()
        daphne.communicate(timeout=15)


def test_https_page_registers_over_wss(browser, https_url):
    context = browser.new_context(ignore_https_errors=True)
    try:
        alice = Client(context, https_url, "alice").sign_in()
        token = alice.page.locator("[name=csrfmiddlewaretoken]").input_value()
        credentials = context.request.post(
            f"{https_url}/api/sip-credentials/",
            headers={"X-CSRFToken": token, "Referer": f"{https_url}/"},  # CSRF over HTTPS
        ).json()
        assert credentials["ws_url"] == f"{https_url.replace('https', 'wss')}/ws"
        expect(alice.page.locator("#connection")).to_have_text("Online")
        assert alice.console.problems() == [], alice.console.transcript()
    finally:
        context.close()
