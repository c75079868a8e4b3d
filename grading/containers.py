"""Reading inside ZIP containers (uploaded .zip archives, and .docx files, which are ZIPs) within bounds.

A container is judged before anything in it is inflated: its entry count from
the end record (before zipfile parses a central directory of a million
entries), then each entry's declared size and compression ratio. Declared
sizes are only a first filter: entries are inflated through `read_bounded`,
which counts the bytes actually produced and stops as soon as they pass the
cap, whatever the directory claimed.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO

MIB = 1024 * 1024
# Below this size a high compression ratio is harmless (a page of repeated
# characters); above it, a ratio past the limit is how zip bombs look.
RATIO_FLOOR_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024


class InflateLimit(Exception):
    """An entry inflated past its cap; nothing more of it was read."""

    def __init__(self, entry: str, cap: int):
        super().__init__(f"{entry} inflates past {cap} bytes")
        self.entry = entry
        self.cap = cap


def declared_entries(file: IO[bytes]) -> int | None:
    """The entry count the end record declares, read from the file's tail; None if it is no ZIP."""
    try:
        file.seek(0)
        # zipfile's own end-record reader (stable since Python 2), which also
        # follows the ZIP64 locator; it reads only the file's tail.
        record = zipfile._EndRecData(file)
    except (OSError, ValueError, EOFError):
        return None
    if not record:
        return None
    return record[zipfile._ECD_ENTRIES_TOTAL]


def ratio(info: zipfile.ZipInfo) -> float:
    return info.file_size / max(info.compress_size, 1)


def looks_like_bomb(info: zipfile.ZipInfo, max_ratio: int) -> bool:
    return ratio(info) > max_ratio and info.file_size > RATIO_FLOOR_BYTES


def read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> Iterator[bytes]:
    """The entry's bytes in chunks, raising InflateLimit once more than `cap` bytes came out.

    zipfile itself never returns more than the declared size (and then checks
    the CRC); this bound holds even if the declared size was never checked.
    """
    produced = 0
    with archive.open(info) as entry:
        while chunk := entry.read(CHUNK_BYTES):
            produced += len(chunk)
            if produced > cap:
                raise InflateLimit(info.filename, cap)
            yield chunk


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    return b"".join(read_bounded(archive, info, cap))
