"""Mail rendering: one Jinja2 environment, a site override folder searched before templates/."""

from __future__ import annotations

import email.utils
from email.headerregistry import Address
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from bot.paths import data_dir


@lru_cache(maxsize=8)
def environment(override: str | None = None) -> jinja2.Environment:
    """The environment; `override` (a folder) is searched first, so a site can change any template."""
    folders = [Path(override)] if override else []
    folders.append(data_dir("templates"))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html_environment(override: str | None = None) -> jinja2.Environment:
    """The same loader with autoescaping on, for .html templates (everything from members is escaped)."""
    return _html_environment(override)


@lru_cache(maxsize=8)
def _html_environment(override: str | None) -> jinja2.Environment:
    env = environment(override).overlay(autoescape=True)
    return env


def render(name: str, context: dict[str, Any], *, override: str | None = None) -> tuple[str, str]:
    """(subject, body) of template `name`; the subject is `{% set subject = ... %}` in the same file."""
    env = html_environment(override) if name.endswith(".html") else environment(override)
    template = env.get_template(name)
    # One rendering gives both: the module's text is the body, its exported `subject` the subject.
    module = template.make_module(context)
    body = str(module)
    subject = str(getattr(module, "subject", "") or "")
    return _one_line(subject), body


def _one_line(text: str) -> str:
    """Header-safe: no CR/LF (a subject built from member text can never add a header)."""
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def build_mail(
    *,
    sender: str,
    sender_name: str,
    recipient: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: dict[str, str] | None = None,
    domain: str = "listbot.invalid",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> EmailMessage:
    """A whole mail: text (and HTML alternative), headers (CR/LF stripped), attachments (filename, mime, data)."""
    msg = EmailMessage()
    msg["From"] = Address(display_name=_one_line(sender_name), addr_spec=sender)
    msg["To"] = recipient
    msg["Subject"] = _one_line(subject)
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    for name, value in (headers or {}).items():
        if value:
            del msg[name]
            msg[name] = _one_line(value)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg
