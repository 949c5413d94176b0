"""The SES webhook's SNS signing certificate: anyone can make us fetch it, so the fetch
is pinned to AWS's SNS hosts and bounded; the counts come from a real HTTPS stand-in."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import re
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from delivery.webhooks import SnsVerifier, WebhookError
from delivery.webhooks.sns import DEFAULT_CERT_HOST_PATTERN, SnsMessage, string_to_sign
from tests.conftest import TEST_ENV
from tests.servers import ServerProcess

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey, name: str, *, tls: bool = False) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if tls:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


SIGNING_PEM = _certificate(KEY, "sns.amazonaws.com")


@dataclass
class CertStandIn:
    """An HTTPS server on localhost that serves PEM files and counts every request."""

    files: dict[str, bytes]
    delay: float = 0.3
    hits: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(_certificate(key, "localhost", tls=True))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


@pytest.fixture(scope="module")
def standin(tls_files: tuple[Path, Path]) -> Iterator[CertStandIn]:
    state = CertStandIn(
        files={
            "/SimpleNotificationService-0123abcd.pem": SIGNING_PEM,
            # A valid certificate followed by 64 KiB: the old code took it whole.
            "/SimpleNotificationService-0b16.pem": SIGNING_PEM + b"#" * 65536,
        }
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] += 1
            threading.Event().wait(state.delay)  # slow enough for concurrent posts to overlap
            body = state.files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def ses_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: tuple[Path, Path]
) -> Iterator[ServerProcess]:
    env = {
        **TEST_ENV,
        "SES_SNS_TOPIC_ARNS": TOPIC,
        "SES_SNS_CERT_HOST_PATTERN": "localhost",
        # httpx in the server trusts our stand-in's certificate through this.
        "SSL_CERT_FILE": str(tls_files[0]),
    }
    proc = ServerProcess(tmp_path_factory.mktemp("sns-certs"), env)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()


def signed(cert_url: str, *, topic: str = TOPIC, sign: bool = True) -> bytes:
    message: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": topic,
        # A type we record nothing for: a 200 says the signature held, and changes nothing.
        "Message": json.dumps({"notificationType": "Rendering", "mail": {"messageId": "ses-1"}}),
        "Timestamp": "2026-01-27T14:59:38.237Z",
        "SignatureVersion": "2",
        "SigningCertURL": cert_url,
        "Signature": base64.b64encode(b"not a signature").decode(),
    }
    if sign:
        to_sign = string_to_sign(SnsMessage(**message))
        signature = KEY.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        message["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(message).encode()


async def _post(server: ServerProcess, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        return await http.post("/api/email/webhooks/ses", content=body)


@pytest.mark.parametrize(
    "host",
    [
        "sns.s3.amazonaws.com",  # an S3 bucket named "sns"
        "sns.s3.us-east-1.amazonaws.com",
        "sns.s3-external-1.amazonaws.com",
        "sns.us-east-1.amazonaws.com.evil.test",
        "evil.sns.us-east-1.amazonaws.com",
        "sns.amazonaws.com",
    ],
)
def test_the_default_host_pattern_refuses_hosts_that_are_not_regional_sns(host: str) -> None:
    assert re.fullmatch(DEFAULT_CERT_HOST_PATTERN, host) is None


@pytest.mark.parametrize(
    "host",
    [
        "sns.us-east-1.amazonaws.com",
        "sns.us-gov-west-1.amazonaws.com",
        "sns.cn-north-1.amazonaws.com.cn",
    ],
)
def test_the_default_host_pattern_accepts_regional_sns_hosts(host: str) -> None:
    assert re.fullmatch(DEFAULT_CERT_HOST_PATTERN, host) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.s3.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com/bucket/SimpleNotificationService-01.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-xyz.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-01.pem?x=1",
        "https://a@sns.us-east-1.amazonaws.com/SimpleNotificationService-01.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-01.pem",
    ],
)
async def test_certificate_urls_off_the_sns_pattern_are_never_fetched(url: str) -> None:
    fetched: list[str] = []

    async def fetch(target: str) -> bytes:
        fetched.append(target)
        return SIGNING_PEM

    verifier = SnsVerifier(allowed_topic_arns=[TOPIC], fetch_certificate=fetch)
    with pytest.raises(WebhookError, match="certificate URL"):
        await verifier.verify(signed(url))
    assert fetched == []


async def test_a_signed_post_is_accepted_with_one_fetch(
    ses_server: ServerProcess, standin: CertStandIn
) -> None:
    """The stand-in works: without this, the refusals below would prove nothing."""
    path = "/SimpleNotificationService-0123abcd.pem"
    response = await _post(ses_server, signed(standin.url(path)))
    assert response.status_code == 200, response.text
    assert standin.hits[path] == 1


async def test_a_topic_outside_the_allowlist_causes_no_fetch(
    ses_server: ServerProcess, standin: CertStandIn
) -> None:
    path = "/SimpleNotificationService-7070.pem"
    body = signed(standin.url(path), topic="arn:aws:sns:us-east-1:999999999999:attacker")
    response = await _post(ses_server, body)
    assert response.status_code == 403
    assert standin.hits[path] == 0


async def test_concurrent_unsigned_posts_with_one_certificate_url_fetch_it_once(
    ses_server: ServerProcess, standin: CertStandIn
) -> None:
    path = "/SimpleNotificationService-5e5e.pem"
    standin.files[path] = SIGNING_PEM
    body = signed(standin.url(path), sign=False)
    answers = await asyncio.gather(*(_post(ses_server, body) for _ in range(8)))
    assert [a.status_code for a in answers] == [403] * 8
    assert standin.hits[path] == 1


async def test_an_oversized_certificate_is_refused(
    ses_server: ServerProcess, standin: CertStandIn
) -> None:
    path = "/SimpleNotificationService-0b16.pem"
    response = await _post(ses_server, signed(standin.url(path)))
    assert response.status_code == 403
    assert "larger than" in response.json()["error"]["message"]
