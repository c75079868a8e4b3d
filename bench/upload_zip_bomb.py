"""Zip bombs against POST /api/batches/{id}/documents: refused fast, never inflated.

Three archives, built in memory:

- one entry of 1 GiB of zeros (about 1 MB compressed): a ratio near 1000;
- 400 entries of 19 MiB of zeros each, every one under the per-file limit,
  7.4 GiB declared in all: the ratio and the total refuse it;
- 100,000 empty entries: the end record's entry count refuses it before
  zipfile parses the central directory.

Each is posted through Django's WSGI handler (in-process test client, a
throwaway SQLite database) five times. The benchmark prints the median time
to the 400, and the process's RSS growth over the whole run, which would be
gigabytes had anything been inflated.

    python bench/upload_zip_bomb.py

Target: every refusal under a second; RSS growth a small multiple of the
upload sizes, nowhere near the declared sizes.
"""

import io
import logging
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = tempfile.mkdtemp(prefix="gp-bench-bomb-")
os.environ["VAR_DIR"] = WORK
os.environ.pop("DATABASE_URL", None)
os.environ["DEBUG"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
os.environ.setdefault("LOG_LEVEL", "ERROR")

RUNS = 5
MIB = 1024 * 1024


def one_huge_entry(size: int = 1024 * MIB) -> bytes:
    buffer = io.BytesIO()
    zeros = bytes(16 * MIB)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("essay.txt", "w", force_zip64=True) as entry,
    ):
        for _ in range(size // len(zeros)):
            entry.write(zeros)
    return buffer.getvalue()


def many_entries_sharing_one_stream(count: int = 400, size: int = 19 * MIB) -> bytes:
    """Write the ZIP by hand so one deflated stream serves every entry (building stays fast)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(bytes(size)) + compressor.flush()
    crc = zlib.crc32(bytes(size))
    out, central = io.BytesIO(), io.BytesIO()
    for index in range(count):
        name = f"essays/essay-{index:04}.txt".encode()
        offset = out.tell()
        fields = (20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0)
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields))
        out.write(name + data)
        central.write(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                *fields,
                0,
                0,
                0,
                0,
                offset,
            )
        )
        central.write(name)
    directory = central.getvalue()
    start = out.tell()
    out.write(directory)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0))
    return out.getvalue()


def entry_count_bomb(count: int = 100_000) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(count):
            archive.writestr(f"e{index}.txt", b"")
    return buffer.getvalue()


def declared_size(data: bytes) -> int:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return -1


def main() -> None:
    import django

    django.setup()
    import psutil
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from batches.models import JobBatch
    from grading.models import Document
    from templates_app.models import BatchTemplate

    setup_test_environment()
    logging.getLogger("django.request").setLevel(logging.ERROR)  # each 400 is expected
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="bench-pass")
    batch = JobBatch.objects.create_from_template(
        owner=user, name="Bomb target", template=BatchTemplate.objects.get(slug="academic-essay")
    )
    client = APIClient()
    client.force_authenticate(user)

    print("building the archives …", flush=True)
    bombs = {
        "1 entry x 1 GiB of zeros": one_huge_entry(),
        "400 entries x 19 MiB of zeros": many_entries_sharing_one_stream(),
        "100,000 empty entries": entry_count_bomb(),
    }
    process = psutil.Process()
    baseline = process.memory_info().rss
    print(f"{'archive':34} {'upload':>9} {'declared':>11} {'status':>6} {'median ms':>10} {'max ms':>8}")
    for label, data in bombs.items():
        timings, status = [], None
        for _ in range(RUNS):
            upload = SimpleUploadedFile("essays.zip", data, content_type="application/zip")
            started = time.perf_counter()
            response = client.post(
                f"/api/batches/{batch.pk}/documents", {"files": [upload]}, format="multipart"
            )
            timings.append((time.perf_counter() - started) * 1000)
            status, reason = response.status_code, response.json().get("files", ["?"])[0]
        declared = declared_size(data)
        declared_text = f"{declared / MIB / 1024:.1f} GiB" if declared >= 0 else "?"
        print(
            f"{label:34} {len(data) / MIB:7.2f}MB {declared_text:>11} {status:>6} "
            f"{statistics.median(timings):10.1f} {max(timings):8.1f}"
        )
        print(f"    {reason[:110]}")
    growth = (process.memory_info().rss - baseline) / MIB
    print(f"RSS growth over all runs: {growth:.0f} MB; documents stored: {Document.objects.count()}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
