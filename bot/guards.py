"""Loop and abuse guards: one pure predicate that says whether a mail may be answered at all."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Local parts that never belong to a person who reads replies.
_ROBOT_LOCALS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|bounces?|bounce[-+].*|.*-bounces(\+.*)?"
    r"|.*-request|listserv|majordomo|mailman|owner-.*|.*-owner)$",
    re.IGNORECASE,
)
# Out-of-office and other automatic subjects, in the languages of a busy international list.
_AUTO_SUBJECT = re.compile(
    r"(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply|auto[- ]response|vacation"
    r"|on leave|abwesenheit|automatische antwort|außer haus|absence|réponse automatique|respuesta automática"
    r"|fuera de la oficina|risposta automatica|fuori sede|afwezig|automatisch antwoord|frånvaro"
    r"|autosvar|delivery status notification|undeliver|returned mail|mail delivery failed)",
    re.IGNORECASE,
)


def refusal_reason(
    headers: Mapping[str, str],
    *,
    sender: str,
    subject: str,
    bot_address: str,
    list_address: str,
) -> str | None:
    """Why a mail to the bot must not be answered, or None when a reply is allowed.

    Each reason, checked in this order (like Mailman's `can_acknowledge`, for replies only):
    - "no-sender": no From address: there is nobody to answer.
    - "own-mail": the mail is from the bot itself: answering would talk to ourselves forever.
    - "x-loop": it carries our X-Loop header: it went through us already (RFC 3834 loop marker).
    - "auto-submitted": Auto-Submitted is anything but "no": RFC 3834 forbids answering automatic mail.
    - "precedence": Precedence bulk, junk or list: mass or list mail, where an answer is backscatter.
    - "autoreply-header": X-Autoreply / X-Autorespond / X-Auto-Response-Suppress (Exchange, others):
      the sender is a robot or asks for no automatic answers.
    - "null-return-path": Return-Path <> is a bounce or notification (RFC 5321: never reply to it).
    - "robot-sender": MAILER-DAEMON, postmaster, noreply, list -bounces/-request/-owner addresses.
    - "out-of-office": the subject is an out-of-office or delivery-failure notice.
    - "list-traffic": it came through a list (the list's address is the sender, or it carries List-Id /
      List-Post, RFC 2369): a command sent to the list must never be answered on the list.
    """
    sender = sender.strip().lower()
    bot = bot_address.strip().lower()
    if not sender or "@" not in sender:
        return "no-sender"
    if sender == bot:
        return "own-mail"
    if bot and bot in headers.get("x-loop", "").lower():
        return "x-loop"
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return "auto-submitted"
    if headers.get("precedence", "").strip().lower() in ("bulk", "junk", "list"):
        return "precedence"
    if any(h in headers for h in ("x-autoreply", "x-autorespond")):
        return "autoreply-header"
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if suppress and any(w in suppress for w in ("all", "autoreply", "oof")):
        return "autoreply-header"
    if "return-path" in headers and re.fullmatch(r"\s*<\s*>\s*", headers["return-path"]):
        return "null-return-path"
    local = sender.rpartition("@")[0]
    if _ROBOT_LOCALS.match(local):
        return "robot-sender"
    if _AUTO_SUBJECT.search(subject):
        return "out-of-office"
    lst = list_address.strip().lower()
    if sender == lst or (lst and sender == lst.replace("@", "-bounces@")):
        return "list-traffic"
    if headers.get("list-id") or headers.get("list-post"):
        return "list-traffic"
    return None


def over_limit(count: int, limit: int) -> bool:
    """True when `count` replies already sent in the window reach `limit`."""
    return count >= limit
