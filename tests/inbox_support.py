"""Documents, ZIPs and rules for the inbox and assignment-rule tests."""

import io
import zipfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from batches.rule_models import AssignmentRule

ESSAY = (
    "Parks make cities better\n\n"
    + "Parks make cities better because they give people space to rest, play and meet. " * 20
    + "\n\n"
    + "Therefore every district deserves a park within a short walk of every home. " * 10
)
REPORT = (
    "Quarterly review of the north region\n\n"
    "Executive summary\n\n"
    + "Sales grew in the north region while costs stayed flat for the quarter. " * 15
    + "\n\nFindings\n\n"
    + "Three stores account for most of the growth in the period under review. " * 10
    + "\n\nRecommendations\n\n"
    + "Open one more store in the region and review prices in the others. " * 5
)
PAPER = (
    "Soil moisture and urban trees\n\nAbstract\n\n"
    + "We measured soil moisture under street trees. " * 20
    + "\n\nMethods\n\n"
    + "Sensors were placed at forty sites over a year. " * 20
    + "\n\nResults\n\n"
    + "Moisture fell with distance from green space. " * 20
    + "\n\nReferences\n\nSmith, J. (2020). Trees. Journal of Things, 4, 1-10.\n"
)
# Not a PDF anyone can read, but its bytes say PDF: the rules see application/pdf.
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def text_file(name: str, text: str = ESSAY) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def zip_of(name: str, entries: dict[str, str | bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data.encode() if isinstance(data, str) else data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def stored_files(media: Path) -> list[Path]:
    return [path for path in Path(media).rglob("*") if path.is_file()] if Path(media).exists() else []


def rule(owner, name: str, position: int, **fields) -> AssignmentRule:
    """A rule saved after the same checks as the API's (problems() must be empty)."""
    made = AssignmentRule(owner=owner, name=name, position=position, **fields)
    problems = made.problems()
    assert not problems, problems
    made.save()
    return made
