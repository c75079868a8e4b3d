"""Webhook deliveries: signed with the shared secret, retried with backoff, every attempt logged."""

import hashlib
import hmac
import ipaddress
import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule
from django_q.scheduler import scheduler

from batches.models import BatchStatus
from notifications.delivery import deliver_notification, signature_matches
from notifications.events import Occurrence, notify
from notifications.models import BatchWebhook, Channel, DeliveryStatus, Notification
from notifications.tasks import deliver
from tests.conftest import make_batch, set_status
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def batch(owner):
    return set_status(make_batch(owner, jobs=2, name="Essays"), BatchStatus.PROCESSING)


def webhook_notification(batch, url: str) -> Notification:
    webhook = BatchWebhook.objects.create(batch=batch, url=url, created_by=batch.owner)
    occurrence = Occurrence("progress_milestone", "50", 'Batch "Essays" is 50 % done', "1 of 2 jobs graded.")
    notify(batch, occurrence, batch.progress())
    return Notification.objects.select_related("webhook").get(webhook=webhook)


def fresh(notification: Notification) -> Notification:
    return Notification.objects.select_related("webhook", "recipient").get(pk=notification.pk)


def test_the_signature_verifies_with_the_shared_secret_over_the_raw_body(batch, webhook_receiver):
    notification = webhook_notification(batch, webhook_receiver.url)
    assert deliver(notification.pk) == "sent on attempt 1"
    [request] = webhook_receiver.received
    secret = notification.webhook.secret
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Gradeproject-Signature"] == expected
    assert signature_matches(secret, request.body, request.headers["X-Gradeproject-Signature"])
    assert not signature_matches("another-secret", request.body, expected)
    assert not signature_matches(secret, request.body.replace(b"50", b"51"), expected)
    body = request.json()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Gradeproject-Event"] == "progress_milestone"
    assert request.headers["X-Gradeproject-Delivery"] == str(notification.pk)
    assert int(request.headers["X-Gradeproject-Timestamp"]) == body["timestamp"]
    assert abs(body["timestamp"] - timezone.now().timestamp()) < 60
    assert body["batch"]["id"] == batch.pk
    assert body["event"] == "progress_milestone"


def test_a_successful_delivery_is_logged_with_its_status_code(batch, webhook_receiver):
    notification = webhook_notification(batch, webhook_receiver.url)
    deliver(notification.pk)
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.SENT
    assert notification.sent_at is not None
    [attempt] = notification.attempt_log.all()
    assert (attempt.number, attempt.ok, attempt.status_code, attempt.error) == (1, True, 200, "")


def test_a_receiver_answering_500_is_retried_with_growing_backoff_then_logged_failed(batch, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RETRY_BASE_S = 30
    with WebhookReceiver(statuses=[500]) as failing:
        notification = webhook_notification(batch, failing.url)
        waits = []
        now = timezone.now()
        for attempt in (1, 2, 3):
            outcome = deliver_notification(fresh(notification), now=now)
            assert outcome.startswith(f"attempt {attempt} failed") or outcome.startswith("failed for good")
            current = fresh(notification)
            if current.status == DeliveryStatus.RETRYING:
                waits.append((current.next_attempt_at - now).total_seconds())
                retry = Schedule.objects.get(name=f"Notification {notification.pk}: attempt {attempt + 1}")
                assert (retry.func, retry.args, retry.schedule_type) == (
                    "notifications.tasks.deliver",
                    str(notification.pk),
                    Schedule.ONCE,
                )
                assert retry.next_run == current.next_attempt_at
                # Honest backoff: the delivery refuses to run before its time.
                assert deliver(notification.pk).startswith("not due")
                now = current.next_attempt_at
        assert len(failing.received) == 3
    assert 30 <= waits[0] <= 33.1
    assert 60 <= waits[1] <= 66.1
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.FAILED
    assert notification.last_error == "The receiver answered HTTP 500."
    log = list(notification.attempt_log.values_list("number", "ok", "status_code", "error"))
    assert log == [(n, False, 500, "The receiver answered HTTP 500.") for n in (1, 2, 3)]
    assert not Schedule.objects.filter(name__startswith=f"Notification {notification.pk}: attempt 4").exists()


def test_the_retry_runs_through_django_q2s_scheduler_and_succeeds(batch, settings, tasks_inline):
    settings.NOTIFY_RETRY_BASE_S = 0
    with WebhookReceiver(statuses=[503, 200]) as flaky:
        notification = webhook_notification(batch, flaky.url)
        deliver(notification.pk)
        assert fresh(notification).status == DeliveryStatus.RETRYING
        scheduler()  # the cluster's scheduler: runs the one-off schedule (inline in sync mode)
        assert len(flaky.received) == 2
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.SENT
    assert list(notification.attempt_log.values_list("status_code", flat=True)) == [503, 200]
    assert [r.json()["attempt"] for r in flaky.received] == [1, 2]
    assert not Schedule.objects.filter(func="notifications.tasks.deliver").exists()


def test_an_unreachable_receiver_is_logged_without_a_status_code(batch, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notification = webhook_notification(batch, f"http://127.0.0.1:{port}/hook")
    assert deliver(notification.pk).startswith("failed for good after 1 attempts")
    [attempt] = fresh(notification).attempt_log.all()
    assert attempt.status_code is None
    assert attempt.error.startswith(f"Could not reach 127.0.0.1:{port}")


def test_a_redirect_is_not_followed(batch, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    with WebhookReceiver(statuses=[302]) as redirecting:
        notification = webhook_notification(batch, redirecting.url)
        deliver(notification.pk)
        assert len(redirecting.received) == 1
    assert fresh(notification).last_error == "The receiver answered HTTP 302."


def test_deliveries_of_a_deleted_batch_are_dropped_quietly(batch, webhook_receiver):
    notification = webhook_notification(batch, webhook_receiver.url)
    set_status(batch, BatchStatus.COMPLETED)
    batch.delete()
    assert deliver(notification.pk).startswith("gone")
    assert webhook_receiver.received == []


def test_in_app_notifications_are_delivered_by_being_stored(batch):
    occurrence = Occurrence("progress_milestone", "25", "t", "b")
    [in_app] = notify(batch, occurrence, batch.progress())
    assert (in_app.channel, in_app.status) == (Channel.IN_APP, DeliveryStatus.SENT)
    assert deliver(in_app.pk).startswith("not due")
    assert timedelta(0) <= timezone.now() - in_app.sent_at < timedelta(minutes=1)


def test_a_webhook_to_an_internal_address_is_refused_at_once_outside_development(
    batch, settings, webhook_receiver
):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    notification = webhook_notification(batch, webhook_receiver.url.replace("127.0.0.1", "localhost"))
    assert deliver(notification.pk).startswith("failed for good after 1 attempts")
    assert webhook_receiver.received == []
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.FAILED
    assert notification.last_error.startswith(
        "Refused to post to localhost: it resolves to the internal address"
    )
    assert not Schedule.objects.exists()


# --- which addresses a webhook reaches, and how ------------------------------------------
#
# No test here sends anything off the machine: the address checks are tested as
# functions, resolution is faked, and connections go to loopback receivers (or
# to a stand-in that records the address and refuses).

INTERNAL = [
    "10.0.0.1",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::5db8:d822",  # local-use NAT64: internal whatever it embeds
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:127.0.0.1",
    "::10.0.0.1",  # IPv4-compatible
]
GLOBAL = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_internal_in_every_form(address):
    from notifications.addresses import is_internal

    assert is_internal(address)


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_and_their_transition_forms_are_not(address):
    from notifications.addresses import is_internal

    assert not is_internal(address)


def test_the_ipv4_inside_transition_addresses_is_extracted():
    from notifications.addresses import embedded_ipv4

    def inside(text):
        return [str(address) for address in embedded_ipv4(ipaddress.IPv6Address(text))]

    assert inside("64:ff9b::a00:1") == ["10.0.0.1"]
    assert inside("2002:a00:1::") == ["10.0.0.1"]
    assert inside("::ffff:10.0.0.1") == ["10.0.0.1"]
    assert inside("2001:0:4136:e378:8000:63bf:f5ff:fffe") == ["65.54.227.120", "10.0.0.1"]
    assert inside("2606:4700:4700::1111") == []


class FakeResolver:
    """socket.getaddrinfo for made-up names, answering a list of answers in turn; real for the rest."""

    def __init__(self, monkeypatch, name: str, *answers: list[str]):
        self.name, self.answers, self.calls = name, list(answers), 0
        self.real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, *args, **kwargs):
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        self.calls += 1
        addresses = self.answers[min(self.calls, len(self.answers)) - 1]
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            )
            for address in addresses
        ]


@pytest.fixture
def no_connections(monkeypatch):
    """Record the addresses a delivery would connect to, and refuse, so nothing leaves the machine."""
    import notifications.delivery

    attempted = []

    def refuse(targets, timeout):
        attempted.extend(str(target.address) for target in targets)
        raise ConnectionRefusedError("stand-in: not connecting")

    monkeypatch.setattr(notifications.delivery, "_connect", refuse)
    return attempted


@pytest.mark.parametrize("answer", ["64:ff9b::a00:1", "2002:a00:1::", "::ffff:10.0.0.1"])
def test_a_name_resolving_to_a_disguised_internal_address_is_refused_at_send_time(
    batch, settings, monkeypatch, no_connections, answer
):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    FakeResolver(monkeypatch, "hooks.example.test", [answer])
    notification = webhook_notification(batch, "https://hooks.example.test/hook")
    assert deliver(notification.pk).startswith("failed for good after 1 attempts")
    shown = ipaddress.ip_address(answer)  # as Python writes it: ::ffff:a00:1, say
    assert fresh(notification).last_error == (
        f"Refused to post to hooks.example.test: it resolves to the internal address {shown}."
    )
    assert no_connections == []


def test_one_internal_address_among_global_ones_refuses_the_host(
    batch, settings, monkeypatch, no_connections
):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    FakeResolver(monkeypatch, "hooks.example.test", ["93.184.216.34", "10.0.0.1"])
    notification = webhook_notification(batch, "https://hooks.example.test/hook")
    assert deliver(notification.pk).startswith("failed for good")
    assert no_connections == []


def test_the_host_is_resolved_once_and_only_the_checked_address_is_connected(
    batch, settings, monkeypatch, no_connections
):
    """DNS rebinding: a global answer for the check, then loopback for the connection, would have worked."""
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    resolver = FakeResolver(monkeypatch, "hooks.example.test", ["93.184.216.34"], ["127.0.0.1"])
    notification = webhook_notification(batch, "https://hooks.example.test/hook")
    outcome = deliver(notification.pk)
    assert outcome.startswith("attempt 1 failed (Could not reach hooks.example.test")
    assert resolver.calls == 1
    assert no_connections == ["93.184.216.34"]


def test_the_post_goes_to_the_resolved_address_with_the_urls_host(batch, monkeypatch, webhook_receiver):
    """NOTIFY_WEBHOOK_ALLOW_PRIVATE is on in the tests, so a loopback receiver stands in for the world."""
    port = int(webhook_receiver.url.split(":")[2].split("/")[0])
    resolver = FakeResolver(monkeypatch, "hooks.example.test", ["127.0.0.1"], ["192.0.2.1"])
    notification = webhook_notification(batch, f"http://hooks.example.test:{port}/hooks/gradeproject?team=a")
    assert deliver(notification.pk) == "sent on attempt 1"
    [request] = webhook_receiver.received
    assert request.headers["Host"] == f"hooks.example.test:{port}"
    assert resolver.calls == 1


def _certificate(tmp_path, name: str):
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """A loopback HTTPS receiver whose certificate names hooks.example.test, trusted by the delivery."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import notifications.delivery

    cert, key = _certificate(tmp_path, "hooks.example.test")
    seen = {"sni": [], "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen["hosts"].append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda connection, name, context: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(
        notifications.delivery, "tls_context", lambda: ssl.create_default_context(cafile=cert)
    )
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_https_to_the_checked_address_keeps_sni_and_the_certificate_check_for_the_host(
    batch, monkeypatch, tls_receiver
):
    port, seen = tls_receiver
    FakeResolver(monkeypatch, "hooks.example.test", ["127.0.0.1"])
    notification = webhook_notification(batch, f"https://hooks.example.test:{port}/hook")
    assert deliver(notification.pk) == "sent on attempt 1"
    assert seen["sni"] == ["hooks.example.test"]
    assert seen["hosts"] == [f"hooks.example.test:{port}"]


def test_https_to_a_host_the_certificate_does_not_name_fails(batch, monkeypatch, settings, tls_receiver):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    port, seen = tls_receiver
    FakeResolver(monkeypatch, "other.example.test", ["127.0.0.1"])
    notification = webhook_notification(batch, f"https://other.example.test:{port}/hook")
    assert deliver(notification.pk).startswith("failed for good")
    assert "CERTIFICATE_VERIFY_FAILED" in fresh(notification).last_error
    assert seen["hosts"] == []
