"""DOCX bombs against POST /api/batches/{id}/documents: refused fast, memory flat.

A .docx is a ZIP; python-docx inflated its word/document.xml whole, so a 1 MB
file whose XML inflates to 1 GiB grew a web worker by 2.1 GB and took 58 s.
Three uploads, built without ever holding the XML (tests/support/documents.py):

- bomb.docx: 1.2 MB, word/document.xml of 1 GiB of paragraphs (ratio ~860),
  refused from the ZIP directory (MAX_ZIP_RATIO) without inflating a byte;
- liar.docx: the same XML, its directory declaring 10 MB, with the ratio
  guard switched off: the XML is inflated and parsed as a stream, and
  refused at MAX_DOCUMENT_CHARS after about half a megabyte of it;
- essays.zip: bomb.docx stored inside a ZIP, refused by name as "essays.zip: bomb.docx".

A worker subprocess (a fresh interpreter, a throwaway SQLite database) posts
each through Django's WSGI handler five times and reports the median and
slowest time to the 400, and its own RSS growth over all the runs, measured
after the bombs were built.

    python bench/docx_bomb.py

Target: every refusal under a second; RSS growth under 50 MB.
"""

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
MIB = 1024 * 1024


def worker() -> None:
    sys.path.insert(0, str(ROOT))
    import logging

    import django

    django.setup()
    import psutil
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import override_settings
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from batches.models import JobBatch
    from grading.models import Document
    from templates_app.models import BatchTemplate
    from tests.support.documents import docx_bomb, make_docx

    setup_test_environment()
    logging.getLogger("django.request").setLevel(logging.ERROR)  # each 400 is expected
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="bench-pass")
    batch = JobBatch.objects.create_from_template(
        owner=user, name="Bomb target", template=BatchTemplate.objects.get(slug="academic-essay")
    )
    client = APIClient()
    client.force_authenticate(user)

    bomb = docx_bomb(1 << 30)
    liar = docx_bomb(1 << 30, declared_bytes=10 * MIB)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("class/bomb.docx", bomb)
    cases = [
        ("bomb.docx: 1 GiB of XML", "bomb.docx", bomb, {}),
        ("liar.docx: declares 10 MB, ratio off", "liar.docx", liar, {"MAX_ZIP_RATIO": 10**9}),
        ("essays.zip holding bomb.docx", "essays.zip", archive.getvalue(), {}),
    ]

    def post(name: str, data: bytes):
        upload = SimpleUploadedFile(name, data)
        return client.post(f"/api/batches/{batch.pk}/documents", {"files": [upload]}, format="multipart")

    post("warm-up.docx", make_docx(["Every parser imported and used once."]))
    stored_before = Document.objects.count()
    process = psutil.Process()
    baseline = process.memory_info().rss
    results = []
    for label, name, data, overrides in cases:
        timings, status, reason = [], None, ""
        with override_settings(**overrides):
            for _ in range(RUNS):
                started = time.perf_counter()
                response = post(name, data)
                timings.append((time.perf_counter() - started) * 1000)
                status, reason = response.status_code, response.json().get("files", ["?"])[0]
        results.append(
            {
                "label": label,
                "size": len(data),
                "status": status,
                "median_ms": statistics.median(timings),
                "max_ms": max(timings),
                "reason": reason,
            }
        )
    growth = process.memory_info().rss - baseline
    print(
        json.dumps({"results": results, "growth": growth, "stored": Document.objects.count() - stored_before})
    )


def main() -> None:
    work = tempfile.mkdtemp(prefix="gp-bench-docx-")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        VAR_DIR=work,
        DEBUG="0",
        SECRET_KEY=env.get("SECRET_KEY", "bench-only-secret-key"),
        DJANGO_SETTINGS_MODULE="gradeproject.settings",
        LOG_LEVEL="ERROR",
    )
    print("building the bombs and posting them in a worker process …", flush=True)
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--worker"], cwd=ROOT, env=env, capture_output=True, text=True
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"the worker failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{'upload':38} {'size':>8} {'status':>6} {'median ms':>10} {'max ms':>8}")
    for row in report["results"]:
        print(
            f"{row['label']:38} {row['size'] / MIB:6.2f}MB {row['status']:>6} "
            f"{row['median_ms']:10.1f} {row['max_ms']:8.1f}"
        )
        print(f"    {row['reason'][:110]}")
    print(
        f"worker RSS growth over all runs: {report['growth'] / MIB:.1f} MB; "
        f"documents stored: {report['stored']}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
    else:
        main()
