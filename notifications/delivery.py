"""Sending one notification over its channel, and the record of each attempt.

Webhooks are a JSON POST signed with HMAC-SHA256 of the raw body under the
webhook's own secret (`X-Gradeproject-Signature: sha256=<hex>`), the way
GitHub signs its deliveries; the body carries the same `timestamp` as the
`X-Gradeproject-Timestamp` header, so a receiver can refuse replays of old
bodies knowing the timestamp was signed too.

The receiver's host is resolved once; unless NOTIFY_WEBHOOK_ALLOW_PRIVATE is
on, every address it resolves to must be global (notifications.addresses, which
also looks inside NAT64, 6to4, Teredo and IPv4-mapped forms), and the POST then
connects to exactly those checked addresses, never resolving the name again:
the Host header, and for HTTPS the SNI and the certificate check, still use the
host name of the URL. Redirects are not followed.
"""

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from notifications.addresses import IPAddress, Target, first_internal, resolve
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


def _connect(targets: list[Target], timeout: float) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers."""
    error: OSError = OSError("no address to connect to")
    for target in targets:
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(target.sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the URL's host name (its Host header), over a socket to addresses already checked."""

    def __init__(self, host: str, port: int, targets: list[Target], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.targets = targets

    def connect(self) -> None:
        self.sock = _connect(self.targets, self.timeout)


def tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's authorities, host names checked."""
    return ssl.create_default_context()


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS over a socket to a checked address, with SNI and the certificate check for the host name."""

    def __init__(self, host: str, port: int, targets: list[Target], timeout: float):
        self.tls = tls_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.targets = targets

    def connect(self) -> None:
        sock = _connect(self.targets, self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def checked_targets(host: str, port: int) -> list[Target]:
    """The host's addresses, resolved once and (outside development) all global; else DeliveryError."""
    try:
        targets = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DeliveryError(f"Could not resolve {host}: {reason}.") from exc  # retried: DNS may recover
    if not settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE:
        internal: IPAddress | None = first_internal(targets)
        if internal is not None:
            raise DeliveryError(
                f"Refused to post to {host}: it resolves to the internal address {internal}.", permanent=True
            )
    return targets


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
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise DeliveryError(f"The webhook URL has an invalid port: {exc}.", permanent=True) from exc
    if scheme not in ("http", "https") or not host:
        raise DeliveryError("The webhook URL is not an http:// or https:// URL with a host.", permanent=True)
    targets = checked_targets(host, port)
    timestamp = int(time.time())
    body = webhook_body(notification, timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "gradeproject-webhooks/1",
        SIGNATURE_HEADER: sign(webhook.secret, body),
        TIMESTAMP_HEADER: str(timestamp),
        EVENT_HEADER: notification.event,
        DELIVERY_HEADER: str(notification.pk),
    }
    connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    connection = connection_class(host, port, targets, timeout=settings.NOTIFY_SEND_TIMEOUT_S)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"Could not reach {parts.netloc}: {exc}.") from exc
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    raise DeliveryError(f"The receiver answered HTTP {status}.", status_code=status)
