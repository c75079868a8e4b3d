"""The teacher's grades as a spreadsheet exports them: the CSV that `grade --exemplars` reads.

Spreadsheets write CSV in more ways than the csv module's defaults read: Excel in much of Europe
separates fields with ";" and writes "7,5" for seven and a half, Windows exports are often
Windows-1252 rather than UTF-8 (with or without a BOM), headers keep the case and the spaces
they were typed with, and blocks of rows are separated by blank lines or lines of bare
separators. `read_sheet` takes all of these and refuses the rest with one sentence.
"""

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

# A teacher's grades of a few hundred documents fit in kilobytes; past this it is another file.
MAX_BYTES = 20 * 1024 * 1024
# What .xlsx and .ods (ZIP) and the old .xls (OLE) files start with.
WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
DELIMITERS = (",", ";", "\t")
DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


class SheetError(ValueError):
    """A sentence saying what is wrong with the file."""


@dataclass
class Row:
    line: int
    values: dict[str, str]


def read_sheet(path: Path) -> tuple[list[str], list[Row]]:
    """(the header's column names, stripped and lower-cased; the rows that are not blank)."""
    if path.is_dir():
        raise SheetError(f"{path} is a folder; give the CSV file of the teacher's grades")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SheetError(f"{path} is larger than {MAX_BYTES // 2**20} MB; it is not a sheet of grades")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SheetError(f"{path}: there is no such file") from None
    except OSError as error:
        raise SheetError(f"{path} cannot be read ({error.strerror or error})") from None
    if data.startswith(WORKBOOK_MAGIC):
        raise SheetError(f"{path} is a spreadsheet workbook, not CSV: save it as CSV and give that file")
    text = decode(data)
    if "\x00" in text:
        raise SheetError(f"{path} is not a text file; give the CSV file of the teacher's grades")
    try:
        return parse(text, path)
    except csv.Error as error:
        raise SheetError(f"{path} is not valid CSV ({error})") from None


def decode(data: bytes) -> str:
    """UTF-8 (a BOM dropped) when it is, else Windows-1252, else Latin-1, which decodes any byte."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def parse(text: str, path: Path) -> tuple[list[str], list[Row]]:
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise SheetError(f"{path} is empty: it needs a header line with the columns file and score")
    # newline="" keeps CRLF, a lone CR (old Mac exports) and line breaks inside quotes to csv.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(header_line))
    header: list[str] | None = None
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or one of bare separators between blocks of rows
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            check_header(header, path)
            continue
        rows.append(Row(reader.line_num, row_values(header, cells, reader.line_num)))
    return header, rows


def delimiter_of(header_line: str) -> str:
    """The separator the header uses most: a header names columns, so it holds no numbers with commas."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def check_header(header: list[str], path: Path) -> None:
    named = [column for column in header if column]
    twice = sorted({column for column in named if named.count(column) > 1})
    if twice:
        raise SheetError(f"{path} has the column {twice[0]} twice")


def row_values(header: list[str], cells: list[str], line: int) -> dict[str, str]:
    if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
        raise SheetError(f"line {line} has more values than the header has columns")
    values = {}
    for column, cell in zip(header, cells, strict=False):
        if column:
            values[column] = cell.strip()
        elif cell.strip():
            raise SheetError(f"line {line} has a value in a column without a name in the header")
    return values


def number(text: str) -> float:
    """A score as typed: "7.5", or "7,5" where the decimal separator is a comma."""
    if DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    return float(text)
