"""Email over SMTP with the standard library's ``smtplib``, run in a worker thread.

SMTP replies map to retries the usual way: 4xx is transient (greylisting, mailbox busy,
rate limits), 5xx is permanent, connection failures and timeouts are transient.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

import httpx
from pydantic import Field

from alerting.channels.base import Channel, Delivery, ReceiverBase, require_secret
from alerting.decisions import Notification
from alerting.redaction import Redactor


class EmailConfig(ReceiverBase):
    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    #: ``starttls`` upgrades a plain connection; ``tls`` is implicit TLS (port 465).
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password_secret: str | None = None
    sender: str
    to: tuple[str, ...] = Field(min_length=1)

    def secret_refs(self) -> tuple[str, ...]:
        return (self.password_secret,) if self.password_secret else ()

    def channel(self, name: str, secrets: dict[str, str], client: httpx.AsyncClient) -> Channel:
        return EmailChannel(name, self, secrets)  # SMTP: no HTTP client


class EmailChannel:
    def __init__(self, name: str, config: EmailConfig, secrets: dict[str, str]) -> None:
        self._name = name
        self._config = config
        self._password = require_secret(name, secrets, config.password_secret) if config.password_secret else None
        self._redact = Redactor([self._password] if self._password else [])

    @property
    def name(self) -> str:
        return self._name

    def build_message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = notification.title
        message["From"] = self._config.sender
        message["To"] = ", ".join(self._config.to)
        domain = self._config.sender.rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(idstring=notification.notification_id.replace("/", "."), domain=domain)
        message["X-OrderRadar-Alert"] = notification.alert_id
        message.set_content(notification.text)
        return message

    async def send(self, notification: Notification) -> Delivery:
        message = self.build_message(notification)
        return await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> Delivery:
        config = self._config
        timeout = config.timeout.total_seconds()
        try:
            smtp: smtplib.SMTP
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=timeout)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if config.username and self._password:
                    smtp.login(config.username, self._password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= code < 500 for code in codes)
            return Delivery(
                ok=False,
                retryable=transient,
                status=max(codes, default=None),
                error=f"SMTP recipients refused: codes {sorted(set(codes))}",
            )
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return Delivery(
                ok=False,
                retryable=400 <= exc.smtp_code < 500,
                status=exc.smtp_code,
                error=self._redact(f"SMTP {exc.smtp_code}: {text[:200]}"),
            )
        except TimeoutError:
            return Delivery(ok=False, retryable=True, error=f"timeout after {timeout:g}s")
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnects, refused connections, TLS failures: the server may come back.
            return Delivery(ok=False, retryable=True, error=self._redact(f"{type(exc).__name__}: {exc}"))
        return Delivery(ok=True, status=250)
