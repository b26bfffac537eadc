"""Notification channel to citizens' phones (``CARPETA_SMS_SINK``).

A port with three adapters, chosen by configuration:

* ``log``: development only. Logs that a message went out, with every digit masked, because
  logs must never hold an OTP or a phone number.
* ``file:PATH``: appends one JSON object per line (``at``, ``to``, ``text``); the demo and the
  tests read codes from here.
* ``https://…``: POSTs ``{"to", "text"}`` to an SMS gateway webhook.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import httpx

log = logging.getLogger("carpeta.sms")

_DIGITS = re.compile(r"\d")


@runtime_checkable
class SmsSender(Protocol):
    async def send(self, to: str, text: str) -> None: ...


def mask_phone(phone: str) -> str:
    return "•" * max(0, len(phone) - 2) + phone[-2:] if len(phone) > 4 else "••••"


class LogSms:
    """Records that a message was sent, never its digits."""

    async def send(self, to: str, text: str) -> None:
        log.info("sms sent", extra={"sms_text": _DIGITS.sub("•", text), "sms_len": len(text)})


class FileSms:
    """JSON lines, one per message: the development and test outbox."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def send(self, to: str, text: str) -> None:
        line = json.dumps(
            {"at": datetime.now(UTC).isoformat(), "to": to, "text": text}, ensure_ascii=False
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


class WebhookSms:
    """A real SMS gateway behind an HTTP webhook; retried briefly, failures logged without data."""

    def __init__(self, url: str, timeout: float = 5.0, attempts: int = 3) -> None:
        self.url = url
        self.timeout = timeout
        self.attempts = attempts

    async def send(self, to: str, text: str) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    response = await client.post(self.url, json={"to": to, "text": text})
                    if response.status_code < 500:
                        if response.status_code >= 400:
                            log.warning(
                                "sms gateway refused", extra={"status": response.status_code}
                            )
                        return
                except httpx.HTTPError as exc:
                    log.warning("sms gateway unreachable", extra={"error": type(exc).__name__})
                await asyncio.sleep(0.2 * 2**attempt)
        log.error("sms not delivered after retries")


def sms_sender_from_sink(sink: str) -> SmsSender:
    if sink == "log":
        return LogSms()
    if sink.startswith("file:"):
        return FileSms(Path(sink.removeprefix("file:")))
    if sink.startswith(("https://", "http://")):
        return WebhookSms(sink)
    raise ValueError("unknown SMS sink")
