"""An aiosmtpd receiver on 127.0.0.1 for tests: records every delivery, answers DATA as scripted."""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from dovecot import free_port

USER = "mailer"
PASSWORD = "s3cret-smtp"


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message_id: str


class Receiver:
    """The handler: DATA is answered from `script` in order (e.g. "421 ...", "451 ..."), then `then`.

    `delay` seconds pass before each answer (a slow server). Only 250 answers count as deliveries."""

    def __init__(self, script: tuple[str, ...] = (), then: str = "250 OK", delay: float = 0.0) -> None:
        self.script = list(script)
        self.then = then
        self.delay = delay
        self.deliveries: list[Delivery] = []
        self.refusals: list[tuple[str, str]] = []  # (answer, Message-ID)
        self.connections = 0
        self._changed = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        data = bytes(envelope.original_content or envelope.content or b"")
        message_id = str(email.message_from_bytes(data).get("Message-ID", "")).strip()
        with self._changed:
            answer = self.script.pop(0) if self.script else self.then
            if answer.startswith("250"):
                self.deliveries.append(Delivery(envelope.mail_from, tuple(envelope.rcpt_tos), data, message_id))
            else:
                self.refusals.append((answer, message_id))
            self._changed.notify_all()
        return answer

    def wait_for(self, deliveries: int = 0, refusals: int = 0, timeout: float = 10.0) -> None:
        """Block until at least this many deliveries and refusals were recorded (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.deliveries) < deliveries or len(self.refusals) < refusals:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"waited {timeout} s for {deliveries} deliveries / {refusals} refusals; "
                        f"got {len(self.deliveries)} / {len(self.refusals)}"
                    )
                self._changed.wait(left)

    def recipients(self) -> list[str]:
        return [r for d in self.deliveries for r in d.rcpt_tos]


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def start_receiver(receiver: Receiver, *, auth: bool = False) -> Controller:
    """Start `receiver` behind an aiosmtpd Controller on a concrete free port (port=0 fails its readiness check)."""
    port = free_port()
    kwargs: dict[str, Any] = {}
    if auth:
        # AUTH offered without TLS (loopback); not *required*, since aiosmtpd warns about that combination.
        kwargs = {"authenticator": _authenticator, "auth_require_tls": False}
    controller = Controller(receiver, hostname="127.0.0.1", port=port, ready_timeout=5.0, **kwargs)
    controller.start()
    receiver.port = port
    return controller


@pytest.fixture
def smtp_receiver() -> Iterator[Receiver]:
    """A recording SMTP receiver that accepts everything; tests change `.script`, `.then`, `.delay`."""
    r = Receiver()
    controller = start_receiver(r)
    try:
        yield r
    finally:
        controller.stop()
