"""SMTP over TLS against a real aiosmtpd on loopback: STARTTLS and implicit TLS, the certificate verified."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from dovecot import free_port
from smtp_receiver import PASSWORD, USER, Receiver, _authenticator
from test_outbox import SMTP_PASSWORD_ENV, mail, smtp_config

from bot.config import Config, ConfigError
from bot.smtp import check_smtp, send_one


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (a client trusts it through SSL_CERT_FILE)."""
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receivers(certificate: tuple[Path, Path]) -> Iterator[tuple[Receiver, Receiver]]:
    """Two receivers with login: one that requires STARTTLS, one that speaks TLS from the first byte."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    starttls, implicit = Receiver(), Receiver()
    controllers = []
    for receiver, kwargs in (
        (starttls, {"tls_context": context, "require_starttls": True, "auth_require_tls": True}),
        # aiosmtpd does not count implicit TLS as TLS for its AUTH rule; the socket is TLS all along.
        (implicit, {"ssl_context": context, "auth_require_tls": False}),
    ):
        receiver.port = free_port()
        controller = Controller(
            receiver, hostname="127.0.0.1", port=receiver.port, ready_timeout=5.0,
            authenticator=_authenticator, **kwargs,
        )
        controller.start()
        controllers.append(controller)
    try:
        yield starttls, implicit
    finally:
        for controller in controllers:
            controller.stop()


async def test_starttls_and_implicit_tls_deliver(
    tls_receivers: tuple[Receiver, Receiver], certificate: tuple[Path, Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    starttls, implicit = tls_receivers
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    monkeypatch.setenv(SMTP_PASSWORD_ENV, PASSWORD)
    for n, (receiver, security) in enumerate(((starttls, "starttls"), (implicit, "ssl"))):
        config = smtp_config(tmp_path, receiver.port, security=security, username=USER, password_env=SMTP_PASSWORD_ENV)
        await check_smtp(config)
        await send_one(config, mail(n, to=f"member{n}@example.org"))
        assert [d.rcpt_tos for d in receiver.deliveries] == [(f"member{n}@example.org",)]


async def test_tls_misconfigured_is_one_clear_line(
    tls_receivers: tuple[Receiver, Receiver], certificate: tuple[Path, Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    starttls, implicit = tls_receivers
    monkeypatch.setenv(SMTP_PASSWORD_ENV, PASSWORD)

    def config(port: int, security: str) -> Config:
        return smtp_config(tmp_path, port, security=security, username=USER, password_env=SMTP_PASSWORD_ENV)

    # The certificate is not trusted (no SSL_CERT_FILE): refused for both kinds of TLS, nothing sent.
    for receiver, security in ((starttls, "starttls"), (implicit, "ssl")):
        with pytest.raises(ConfigError) as info:
            await check_smtp(config(receiver.port, security))
        line = str(info.value)
        assert f"127.0.0.1:{receiver.port}" in line and "TLS failed" in line, line
        assert "\n" not in line and PASSWORD not in line
    # Plain text to a server that requires STARTTLS before login: the line points at [smtp] security.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with pytest.raises(ConfigError) as info:
        await check_smtp(config(starttls.port, "none"))
    assert "[smtp] security" in str(info.value), str(info.value)
    # Implicit TLS expected from a STARTTLS port: one line, not a hang or a traceback.
    with pytest.raises(ConfigError) as info:
        await check_smtp(config(starttls.port, "ssl"))
    assert f"127.0.0.1:{starttls.port}" in str(info.value) and "\n" not in str(info.value)
    assert starttls.deliveries == [] and implicit.deliveries == []
