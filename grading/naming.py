"""Who wrote a document, read from its file name by a pattern.

A pattern is either one of the LMS download conventions below, by name, or a
template of the file name with placeholders:

    {student_id}_{last}_{first}.*     "s1234_Lovelace_Ada.docx"
    {email}-*                         "ada@uni.example-essay.pdf"
    {name} - essay.*                  "Ada Lovelace - essay.docx"

Placeholders are {student_id}, {email}, {name}, {first} and {last}; `*` stands
for any text (an extension, a title). Everything else must appear as written
(letters in any case). The whole name must fit; a name that does not yields no
identity. A pattern must name the student somehow: {student_id}, {email},
{name} or {last}.

The LMS conventions, as their source code writes the names of a "download all
submissions" archive (both checked against the LMS's code, see README):

canvas  Canvas (lib/content_zipper.rb): "<name>_<user id>_<attachment id>_<file>",
        with "_LATE" after the name for a late submission, "<name>_<user id>_text.html"
        for a text entry and "..._link.html" for a URL. <name> is the student's
        sortable name ("Lovelace, Ada") lower-cased with everything but letters,
        digits and "_" removed: "lovelaceada". With anonymous grading there is no
        name and the id is "anon_<anonymous id>". The user id is Canvas's own id of
        the student: the "ID" column of Canvas's gradebook.
moodle  Moodle (mod/assign, "Download all submissions"): "<full name>_<participant
        number>_assignsubmission_<plugin>_<file>", or, by default since Moodle 3.1,
        a folder per student with that name: "<full name>_<participant number>_
        assignsubmission_file_/<file>". The participant number is the assignment's
        own, neither the user's id nor their ID number, so it is not kept as the
        student id; the name is ("Participant" under blind marking is no name).
"""

import re
from dataclasses import dataclass

PLACEHOLDERS = ("student_id", "email", "name", "first", "last")
IDENTIFYING = ("student_id", "email", "name", "last")
PRESETS = ("canvas", "moodle")
MAX_PATTERN = 200

_PLACEHOLDER_PATTERNS = {
    "student_id": r"[^/\s]+?",
    "email": r"[^/\s@]+@[^/\s@]+\.[^/\s@]+?",
    "name": r"[^/]+?",
    "first": r"[^/]+?",
    "last": r"[^/]+?",
}
_TOKEN = re.compile(r"\{([^{}]*)\}|(\*)|([{}])")

_CANVAS = re.compile(
    r"^(?:(?P<name>\w+?)_)?(?:LATE_)?(?P<student_id>\d+|anon_[A-Za-z0-9]+)_(?:\d+_.+|text\.html|link\.html)$"
)
_MOODLE = re.compile(r"^(?P<name>[^/_]+?)_\d+_assignsubmission_[a-z0-9]+_/?.+$")


@dataclass(frozen=True)
class Identity:
    """Who a file name says wrote it; empty fields were not in the name."""

    student_id: str = ""
    name: str = ""
    email: str = ""

    def __bool__(self) -> bool:
        return bool(self.student_id or self.name or self.email)

    def describe(self) -> str:
        parts = [f"id {self.student_id}" if self.student_id else "", self.name, self.email]
        return ", ".join(part for part in parts if part)


class PatternError(ValueError):
    pass


def pattern_problem(pattern: str) -> str | None:
    """Why the pattern cannot be used, as a sentence; None when it can."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def compile_pattern(pattern: str) -> re.Pattern:
    """The regular expression a custom pattern stands for (presets have their own)."""
    if pattern in PRESETS:
        return _CANVAS if pattern == "canvas" else _MOODLE
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN} characters")
    parts, seen, position, previous = [], set(), 0, None
    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    for match in _TOKEN.finditer(pattern):
        literal = pattern[position : match.start()]
        parts.append(re.escape(literal))
        position = match.end()
        placeholder, star, brace = match.groups()
        if previous and not literal and not brace:
            # "{student_id}*" could split "1001-a.txt" anywhere: the reading would be a guess.
            raise PatternError(f"put some text between {previous} and {match.group(0)}, e.g. “_” or “-”")
        previous = match.group(0) if placeholder is not None else None
        if brace:
            raise PatternError(f"unbalanced “{brace}”; placeholders are written {known}")
        if star:
            parts.append(r".*?")
            continue
        if placeholder not in PLACEHOLDERS:
            raise PatternError(
                f"unknown placeholder {{{placeholder}}}; use {known}, and * for any text, "
                f"or one of the LMS conventions: {', '.join(PRESETS)}"
            )
        if placeholder in seen:
            raise PatternError(f"{{{placeholder}}} appears twice")
        seen.add(placeholder)
        parts.append(f"(?P<{placeholder}>{_PLACEHOLDER_PATTERNS[placeholder]})")
    parts.append(re.escape(pattern[position:]))
    if not seen & set(IDENTIFYING):
        raise PatternError(
            "the pattern names no student: use at least one of "
            + ", ".join(f"{{{name}}}" for name in IDENTIFYING)
            + f", or one of the LMS conventions: {', '.join(PRESETS)}"
        )
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


def parse_name(pattern: str, file_name: str) -> Identity | None:
    """The identity the file name gives under the pattern; None when it does not fit."""
    if not pattern:
        return None
    compiled = compile_pattern(pattern)
    parts = file_name.replace("\\", "/").split("/")
    # A ZIP may wrap the LMS's names in folders of its own: try the path, then its tails.
    match = next(
        (found for start in range(len(parts)) if (found := compiled.match("/".join(parts[start:])))), None
    )
    if match is None:
        return None
    found = {key: (value or "").strip() for key, value in match.groupdict().items()}
    if pattern == "moodle" and found.get("name", "").casefold() == "participant":
        found["name"] = ""  # blind marking: Moodle writes no name
    name = found.get("name") or " ".join(part for part in (found.get("first"), found.get("last")) if part)
    identity = Identity(
        student_id=found.get("student_id", ""), name=name.strip(), email=found.get("email", "").lower()
    )
    return identity or None
