"""Sending one notification over its channel, and the record of each attempt.

Webhooks are a JSON POST signed with HMAC-SHA256 of the raw body under the
webhook's own secret (`X-Gradeproject-Signature: sha256=<hex>`), the way
GitHub signs its deliveries; the body carries the same `timestamp` as the
`X-Gradeproject-Timestamp` header, so a receiver can refuse replays of old
bodies knowing the timestamp was signed too.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from notifications.models import Channel, DeliveryAttempt, Notification

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gradeproject-Signature"
TIMESTAMP_HEADER = "X-Gradeproject-Timestamp"
EVENT_HEADER = "X-Gradeproject-Event"
DELIVERY_HEADER = "X-Gradeproject-Delivery"


class DeliveryError(Exception):
    """An attempt failed; permanent ones are not retried."""

    def __init__(self, message: str, status_code: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent


def private_address(host: str, port: int | None = None) -> str | None:
    """The first loopback, private, link-local or otherwise internal address host resolves to, if any."""
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return None  # unresolvable: the attempt fails on its own, and is retried
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            return str(address)
    return None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute over the raw body and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header or "")


def deliver_notification(notification: Notification, now=None) -> str:
    """Make the next attempt if it is due; returns what happened, for the task log."""
    now = now or timezone.now()
    if not notification.claim(now):
        return "not due (already sent, failed, in flight elsewhere, or waiting to retry)"
    started_at, started = timezone.now(), time.monotonic()
    status_code, error, permanent = None, "", False
    try:
        status_code = _send(notification)
    except DeliveryError as exc:
        status_code, error, permanent = exc.status_code, str(exc), exc.permanent
    DeliveryAttempt.objects.create(
        notification=notification,
        number=notification.attempts,
        started_at=started_at,
        duration_ms=round((time.monotonic() - started) * 1000),
        ok=not error,
        status_code=status_code,
        error=error,
    )
    finished = max(timezone.now(), now)
    if not error:
        notification.record_success(finished)
        return f"sent on attempt {notification.attempts}"
    retry_at = notification.record_failure(error, finished, permanent=permanent)
    if retry_at is None:
        logger.warning("notification %s failed for good: %s", notification.pk, error)
        return f"failed for good after {notification.attempts} attempts: {error}"
    schedule_retry(notification, retry_at)
    return f"attempt {notification.attempts} failed ({error}); next at {retry_at.isoformat()}"


def schedule_retry(notification: Notification, retry_at) -> None:
    """A one-off django-q2 schedule runs the next attempt no earlier than retry_at.

    The scheduler deletes a ONCE schedule after it fires. Should it be lost,
    the minute scan re-enqueues overdue deliveries.
    """
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"Notification {notification.pk}: attempt {notification.attempts + 1}",
        func="notifications.tasks.deliver",
        args=repr(notification.pk),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=retry_at,
    )


def _send(notification: Notification) -> int | None:
    if notification.channel == Channel.EMAIL:
        _send_email(notification)
        return None
    if notification.channel == Channel.WEBHOOK:
        return _post_webhook(notification)
    raise DeliveryError(f"The {notification.channel} channel is delivered when created, not sent.")


def _send_email(notification: Notification) -> None:
    message = EmailMessage(
        subject=f"[gradeproject] {notification.title}",
        body=f"{notification.body}\n\n{notification.payload.get('batch', {}).get('url', '')}".rstrip(),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient.email],
        headers={EVENT_HEADER: notification.event, DELIVERY_HEADER: str(notification.pk)},
    )
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # every backend raises its own kinds
        raise DeliveryError(f"The mail server refused the message: {exc}") from exc


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A signed POST must reach the URL its owner registered, not wherever it points on.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_body(notification: Notification, timestamp: int) -> bytes:
    document = {
        "id": notification.pk,
        "event": notification.event,
        "key": notification.key,
        "attempt": notification.attempts,
        "timestamp": timestamp,
        "title": notification.title,
        **notification.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _post_webhook(notification: Notification) -> int:
    webhook = notification.webhook
    parts = urlsplit(webhook.url)
    if not settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE:
        internal = private_address(parts.hostname or "", parts.port)
        if internal:
            raise DeliveryError(
                f"Refused to post to {parts.hostname}: it resolves to the internal address {internal}.",
                permanent=True,
            )
    timestamp = int(time.time())
    body = webhook_body(notification, timestamp)
    request = urllib.request.Request(
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "gradeproject-webhooks/1",
            SIGNATURE_HEADER: sign(webhook.secret, body),
            TIMESTAMP_HEADER: str(timestamp),
            EVENT_HEADER: notification.event,
            DELIVERY_HEADER: str(notification.pk),
        },
    )
    try:
        with _opener.open(request, timeout=settings.NOTIFY_SEND_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"Could not reach {parts.netloc}: {reason}.") from exc
    if 200 <= status < 300:
        return status
    raise DeliveryError(f"The receiver answered HTTP {status}.", status_code=status)
