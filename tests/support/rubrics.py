"""Rubrics and documents shared by provider tests and benchmarks."""

from __future__ import annotations


def levels(points: int, descriptors: tuple[str, str, str, str]) -> list[dict]:
    shares = (1.0, 0.75, 0.5, 0.25)
    labels = ("Excellent", "Good", "Developing", "Beginning")
    return [
        {"points": round(points * share), "label": label, "descriptor": descriptor}
        for share, label, descriptor in zip(shares, labels, descriptors, strict=True)
    ]


ACADEMIC_ESSAY_RUBRIC = {
    "criteria": [
        {
            "key": "thesis",
            "name": "Thesis and argument",
            "description": "States a clear, arguable thesis and sustains it throughout.",
            "points": 25,
            "keywords": [
                "thesis",
                "argue",
                "claim",
                "position",
                "counterargument",
                "because",
            ],
            "levels": levels(
                25,
                (
                    "A precise, arguable thesis drives every paragraph.",
                    "A clear thesis, mostly sustained.",
                    "A thesis is present but vague or inconsistently followed.",
                    "No identifiable thesis.",
                ),
            ),
        },
        {
            "key": "evidence",
            "name": "Evidence and analysis",
            "description": "Supports claims with relevant, cited evidence and analyses it.",
            "points": 25,
            "keywords": [
                "evidence",
                "study",
                "data",
                "research",
                "example",
                "suggests",
            ],
            "levels": levels(
                25,
                (
                    "Well-chosen, cited evidence, analysed rather than listed.",
                    "Relevant evidence with some analysis.",
                    "Thin or uncited evidence, little analysis.",
                    "Claims are unsupported.",
                ),
            ),
        },
        {
            "key": "organization",
            "name": "Organization and structure",
            "description": "Introduction, body paragraphs with topic sentences, and a conclusion.",
            "points": 20,
            "keywords": ["introduction", "conclusion", "first", "finally"],
            "levels": levels(
                20,
                (
                    "Logical structure with smooth transitions.",
                    "Clear structure with occasional abrupt shifts.",
                    "Some structure, but paragraphs wander.",
                    "No discernible structure.",
                ),
            ),
        },
        {
            "key": "style",
            "name": "Style and mechanics",
            "description": "Varied sentences, precise vocabulary, correct spelling and grammar.",
            "points": 15,
            "keywords": [],
            "levels": levels(
                15,
                (
                    "Fluent, varied and virtually error-free.",
                    "Readable with minor errors.",
                    "Frequent errors that sometimes obscure meaning.",
                    "Errors throughout impede reading.",
                ),
            ),
        },
        {
            "key": "topic",
            "name": "Engagement with the topic",
            "description": "Addresses remote work and its effect on productivity and wellbeing.",
            "points": 15,
            "keywords": [
                "remote work",
                "productivity",
                "wellbeing",
                "office",
                "employees",
            ],
            "levels": levels(
                15,
                (
                    "Engages the question fully and with insight.",
                    "Addresses the question with some depth.",
                    "Touches the question superficially.",
                    "Largely off topic.",
                ),
            ),
        },
    ]
}

ESSAY_SETTINGS = {"expected_words": {"min": 500, "max": 1500}}

STRONG_ESSAY = """\
# Remote Work and Productivity

Since 2020, remote work has moved from a perk to a default for many office employees.
This essay will argue that remote work raises productivity for focused tasks, but only
when organisations protect wellbeing and deliberately rebuild the informal contact that
offices once provided. My thesis rests on three claims, each examined below, and I
address the strongest counterargument before concluding.

## Evidence on output

First, the evidence on individual output is encouraging. A widely cited study of a
Chinese travel agency found that call-centre employees working from home completed 13%
more calls (Bloom et al., 2015). Later research across several industries suggests
similar gains for writing, coding and analysis, because employees lose fewer hours to
commuting and interruptions. According to survey data from 2022, workers reported saving
about 70 minutes a day. These figures do not prove that every job benefits; they do
suggest that concentrated work is often done better away from an open-plan office.

Not every study agrees. Experiments with data-entry staff in India found lower output at
home, largely because the homes lacked reliable power and quiet rooms (Kelly, 2023). The
pattern across these results is instructive rather than contradictory: productivity rises
where the home is a workable place to concentrate, and falls where it is not. Any honest
policy must start from the conditions employees actually have.

## Wellbeing and its limits

Second, productivity gains depend on wellbeing. Employees who cannot separate home from
work report longer days and more exhaustion (Gajendran and Harrison, 2007). For example,
parents sharing a small flat rarely find quiet hours, and younger staff miss mentoring.
However, these harms are not inherent to remote work. They follow from poor policies,
such as expecting instant replies late at night, which organisations can change.
Managers who set clear hours and measure results rather than presence see far less
burnout, according to recent research.

## The counterargument

Third, critics argue that innovation suffers when colleagues no longer meet by chance.
This counterargument deserves weight: a study of a large technology firm found that
remote collaboration networks became more siloed [3]. Nevertheless, the data show that
the loss is concentrated in teams that never planned deliberate contact. Teams that meet
in person for a few days each month recover much of the cross-group exchange. The claim
that offices are indispensable therefore overstates the case; what is indispensable is
contact, and contact can be designed.

## Conclusion

In conclusion, remote work is neither a miracle nor a mistake. The evidence suggests it
improves productivity for focused tasks, provided wellbeing is protected and contact is
rebuilt on purpose. My position is finally a practical one: organisations should stop
asking whether remote work works and start asking how they will make it work for the
particular employees and tasks in front of them.
"""

WEAK_ESSAY = (
    "I like my dog. He is realy fun and we go to the park alot. "
    "Yesterday it rained and we stayed home wich was boring. "
    "Dogs are the best pets becuase they are freindly."
)


def long_essay(words: int = 1500) -> str:
    """A realistic essay of at least `words` words, repeating the strong essay's sections."""
    copies = -(-words // len(STRONG_ESSAY.split()))
    return "\n\n".join([STRONG_ESSAY] * copies)
