"""Feedback that names what the grader measured and quotes the sentences it refers to."""

from __future__ import annotations

import re
from functools import cached_property

from grading.essay import lexicon
from grading.essay.features import CITATION_CUES, CITATION_RE, LONG_SENTENCE, REASONING, Essay
from grading.essay.plan import CriterionPlan, Plan
from grading.essay.text import Sentence

QUOTE_LIMIT = 160
# Below this share of English words a text is most likely in another language (a weak English
# essay, misspelt throughout, still has most of its words right).
NOT_ENGLISH = 0.5
INTRO_RE = re.compile(
    r"\b(?:this (?:essay|paper|report|study|article)|i (?:will )?argue|we (?:will )?argue"
    r"|i contend|i propose|in this (?:essay|paper|report|study)|the purpose of|aims? to"
    r"|will (?:argue|examine|discuss|explore|show|analy[sz]e))\b"
)
CONCLUSION_RE = re.compile(
    r"\b(?:in conclusion|to conclude|in summary|to summari[sz]e|overall|ultimately"
    r"|in sum|taken together|this (?:essay|paper|report) has|in the end)\b"
)


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """The sentence in quotation marks, cut at a word boundary when long."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + "…"
    return f"“{text}”"


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def points(value: float) -> str:
    return f"{value:g}"


class Evidence:
    """The sentences and counts one essay's feedback draws on, found once per essay."""

    def __init__(self, essay: Essay, plan_: Plan) -> None:
        self.essay = essay
        self.plan = plan_

    @cached_property
    def developed(self) -> Sentence | None:
        """The most developed sentence: most distinct content words, closed with punctuation."""
        closed = [
            s for s in self.essay.sentences if s.closed and len(s.words) <= LONG_SENTENCE
        ] or self.essay.sentences
        if not closed:
            return None
        return max(closed, key=lambda s: len({w for w in s.words if len(w) > 3}))

    @cached_property
    def run_on(self) -> Sentence | None:
        long = [s for s in self.essay.sentences if len(s.words) > LONG_SENTENCE]
        return max(long, key=lambda s: len(s.words)) if long else None

    def uncapitalised(self) -> Sentence | None:
        return next((s for s in self.essay.sentences if not s.capitalised), None)

    def reasoning(self) -> Sentence | None:
        return next((s for s in self.essay.sentences if REASONING.find([w.lower() for w in s.words])), None)

    def cited(self) -> Sentence | None:
        return next(
            (
                s
                for s in self.essay.sentences
                if CITATION_RE.search(s.text) or CITATION_CUES.find([w.lower() for w in s.words])
            ),
            None,
        )

    def precise_words(self, most: int = 4) -> list[str]:
        """Uncommon but established words (Zipf 2–3.5: rarer than 3 in a million, yet in use)."""
        found = []
        for word in dict.fromkeys(self.essay.words):
            if len(word) > 4 and word[0] != "@" and lexicon.known(word) and 2.0 <= lexicon.zipf(word) < 3.5:
                found.append(word)
                if len(found) == most:
                    break
        return found

    # Notes: short clauses, joined into a criterion's feedback.

    def length(self) -> str:
        essay = self.essay
        note = f"{plural(essay.word_count, 'word')} in {plural(len(essay.sentences), 'sentence')}"
        if self.plan.expected:
            low, high = self.plan.expected
            note = f"{plural(essay.word_count, 'word')} against an expected {low:,}–{high:,}"
        return note

    def terms(self, criterion: CriterionPlan | None) -> str | None:
        terms = criterion.terms if criterion is not None and criterion.terms else self.plan.topic
        if not terms:
            return None
        stems, text = self.essay.stems(), self.essay.word_text
        found = [term.label for term in terms if term.found(stems, text)]
        missing = [term.label for term in terms if term.label not in found]
        what = "key terms" if criterion is not None and criterion.terms else "words of the task"
        note = f"{len(found)} of {len(terms)} {what} found"
        if found:
            note += ": " + ", ".join(found[:8])
        if missing:
            note += "; missing: " + ", ".join(missing[:6])
        return note

    def developed_note(self) -> str | None:
        sentence = self.developed
        return f"the most developed sentence: {quote(sentence.text)}" if sentence else None

    def structure(self) -> list[str]:
        essay = self.essay
        note = plural(essay.paragraphs, "paragraph")
        if essay.headings:
            note += f" and {plural(essay.headings, 'heading')}"
        notes = [note]
        if essay.paragraphs == 1 and essay.word_count > 120:
            notes.append(
                f"all {essay.word_count:,} words in one paragraph: a new one where the text moves on helps"
            )
        if essay.paragraphs > 1 or essay.headings:
            opening = " ".join(s.text for s in essay.sentences if s.paragraph <= 1).lower()
            closing = " ".join(s.text for s in essay.sentences if s.paragraph == essay.paragraphs - 1).lower()
            notes.append(
                "the opening states its purpose"
                if INTRO_RE.search(opening)
                else "no opening statement of purpose"
            )
            notes.append(
                "the last paragraph concludes"
                if CONCLUSION_RE.search(closing)
                else "no clear conclusion in the last paragraph"
            )
        return notes

    def linking(self) -> str:
        used = [word for word, _ in self.essay.connectives.most_common(4)]
        if not used:
            return "no linking words such as “because”, “however” or “after that”"
        count = sum(self.essay.connectives.values())
        return f"{plural(count, 'linking word')} ({', '.join(f'“{w}”' for w in used)})"

    def run_on_note(self) -> str | None:
        sentence = self.run_on
        if sentence is None:
            return None
        return f"a {len(sentence.words)}-word sentence that could be split: {quote(sentence.text)}"

    def vocabulary(self) -> str:
        mattr = self.essay.value("mattr")
        note = f"vocabulary range {mattr:.2f} (share of distinct words in each 50)"
        words = self.precise_words()
        if words:
            note += "; precise words such as " + ", ".join(f"“{w}”" for w in words)
        return note

    def variety(self) -> str:
        lengths = [len(s.words) for s in self.essay.sentences] or [0]
        mean = sum(lengths) / len(lengths)
        return f"sentences of {min(lengths)}–{max(lengths)} words, {mean:.0f} on average"

    def spelling(self) -> str:
        misspelt = self.essay.misspelt
        if not misspelt:
            return "no spelling errors spotted"
        shown = ", ".join(dict.fromkeys(word for word, _ in misspelt[:8]))
        word, index = misspelt[0]
        note = f"{plural(len(misspelt), 'likely spelling error')} ({shown})"
        return note + f"; “{word}” in {quote(self.essay.sentences[index].text)}"

    def capitals(self) -> str | None:
        sentence = self.uncapitalised()
        if sentence is None:
            return None
        count = sum(1 for s in self.essay.sentences if not s.capitalised)
        return f"{plural(count, 'sentence')} not starting with a capital, such as {quote(sentence.text)}"

    def unclosed(self) -> str | None:
        sentence = next((s for s in self.essay.sentences if not s.closed), None)
        return f"a sentence without closing punctuation: {quote(sentence.text)}" if sentence else None

    def lowercase_i(self) -> str | None:
        sentence = next((s for s in self.essay.sentences if "i" in s.words), None)
        return f"“i” written in lower case: {quote(sentence.text)}" if sentence else None

    def citations(self) -> str:
        count = self.essay.citations
        sentence = self.cited()
        note = f"{plural(count, 'citation')} or figures cited"
        return note + (f", for example {quote(sentence.text)}" if sentence else "")

    def reasoning_note(self) -> str:
        sentence = self.reasoning()
        if sentence is None:
            return "no reasoning words such as “because”, “therefore” or “suggests”"
        return f"reasoning such as {quote(sentence.text)}"

    def opening(self) -> str | None:
        first = self.essay.sentences[0] if self.essay.sentences else None
        return f"it opens with {quote(first.text)}" if first else None

    def notes(self, criterion: CriterionPlan, most: int = 6) -> list[str]:
        notes = [note for aspect in criterion.aspects for note in self.aspect_notes(aspect, criterion)]
        return list(dict.fromkeys(note for note in notes if note))[:most]

    def aspect_notes(self, aspect: str, criterion: CriterionPlan) -> list[str | None]:
        if aspect == "ideas":
            notes = [self.length(), self.terms(criterion), self.developed_note()]
        elif aspect == "organisation":
            notes = [*self.structure(), self.linking(), self.run_on_note()]
        elif aspect == "style":
            notes = [self.vocabulary(), self.variety(), self.developed_note(), self.run_on_note()]
        elif aspect == "conventions":
            notes = [
                self.spelling(),
                self.capitals(),
                self.unclosed(),
                self.lowercase_i(),
                self.run_on_note(),
            ]
        elif aspect == "evidence":
            notes = [self.citations(), self.terms(criterion), self.length()]
        elif aspect == "analysis":
            notes = [self.reasoning_note(), self.linking(), self.terms(criterion), self.length()]
        else:  # argument
            notes = [self.length(), self.terms(criterion), self.opening(), self.reasoning_note()]
        return notes


def criterion_feedback(criterion: CriterionPlan, score: float, evidence: Evidence) -> str:
    heading = f"{points(score)} of {points(criterion.points)}"
    level = criterion.level(score)
    if level is not None:
        heading = f"{level.get('label') or 'Level'} ({heading})"
        descriptor = str(level.get("descriptor") or "").strip()
        if descriptor:
            heading += f" — {descriptor.rstrip('.')}"
    notes = "; ".join(evidence.notes(criterion))
    return f"{heading}. {notes[0].upper()}{notes[1:]}." if notes else f"{heading}."


def overall_feedback(
    names: list[str],
    scores: list[float],
    maxima: list[float],
    qualities: list[float],
    evidence: Evidence,
    exemplars: int,
    level_of: int | None = None,
) -> str:
    """The score, the strongest and weakest criteria (by share of points, ties broken by the
    quality the features show), the most developed sentence, the first thing to fix."""
    score, total = sum(scores), sum(maxima)
    percent = 100 * score / total if total else 0
    essay = evidence.essay
    parts = [
        f"Scored {points(score)} of {points(total)} ({percent:.0f}%) on {plural(essay.word_count, 'word')} "
        f"in {plural(len(essay.sentences), 'sentence')} and {plural(essay.paragraphs, 'paragraph')}."
    ]
    if len(names) > 1:
        ranked = sorted(
            range(len(names)), key=lambda i: (scores[i] / maxima[i] if maxima[i] else 0, qualities[i])
        )
        parts.append(f"Strongest: {names[ranked[-1]]}. Needs most work: {names[ranked[0]]}.")
    developed = evidence.developed
    if developed is not None:
        parts.append(f"Most developed: {quote(developed.text)}.")
    fixes = [
        note for note in (evidence.spelling() if essay.misspelt else None, evidence.run_on_note()) if note
    ]
    if fixes:
        parts.append(f"To fix first: {fixes[0]}.")
    english = lexicon.english_share(essay.bag)
    if english < NOT_ENGLISH:
        parts.insert(
            0,
            f"Only {100 * english:.0f}% of the words are English: the offline grader measures English "
            "writing, so this grade says little; an AI provider can grade other languages.",
        )
    if level_of is not None:
        parts.append(
            f"Graded on general writing features, at the level of {plural(level_of, 'teacher-graded exemplar')} "
            "(they all have one score, which shows a level but no scale to learn)."
        )
    elif exemplars:
        parts.append(f"Graded against {plural(exemplars, 'teacher-graded exemplar')}.")
    else:
        parts.append("Graded on general writing features (no teacher-graded exemplars).")
    return " ".join(parts)
