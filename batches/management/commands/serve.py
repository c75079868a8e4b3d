import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from core.processes import stop_process_groups


class Command(BaseCommand):
    help = "Serve the web app and a django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        manage = [sys.executable, "manage.py"]
        # Each child leads its own process group, so stopping one stops
        # everything it started (runserver's reloader, qcluster's workers).
        children = [
            subprocess.Popen([*manage, "qcluster"], start_new_session=True),
            subprocess.Popen([*manage, "runserver", f"{host}:{port}"], start_new_session=True),
        ]
        self.stdout.write(f"Serving http://{host}:{port}/ with a django-q2 cluster; Ctrl-C stops both.")
        # Installed explicitly: a shell that starts us in the background leaves
        # SIGINT ignored, and Python then never raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            _stop(children)
            return
        # One child ended on its own (a port in use, say): stop the other and fail.
        _stop(children)
        sys.exit(1)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop(children: list[subprocess.Popen]) -> None:
    # The stop is bounded (SIGKILL after 10 s); a second Ctrl-C must not cut it
    # short and leave a cluster running with no one to stop it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop_process_groups(children, timeout=10)
