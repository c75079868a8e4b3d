"""The three pre-built batch templates, installed by a data migration.

Each rubric's levels describe what a grader sees at that level for that kind
of document; the keywords are what the builtin grader looks for per criterion.

Grading starts by itself (`auto_start`) once documents are uploaded for essays
and reports: a class set or a team's reports arrive in one upload, and the
teacher expects the grades to follow. Research papers are long and costly to
grade, so their batches wait for the teacher's start, after the estimate.
Migration 0003 turned the rule on in the rows installed before.
"""

from typing import Any


def _levels(points: int, excellent: str, good: str, developing: str, weak: str) -> list[dict[str, Any]]:
    return [
        {"points": points, "label": "Excellent", "descriptor": excellent},
        {"points": round(points * 0.75), "label": "Good", "descriptor": good},
        {"points": round(points * 0.5), "label": "Developing", "descriptor": developing},
        {"points": round(points * 0.25), "label": "Weak", "descriptor": weak},
    ]


ACADEMIC_ESSAY = {
    "slug": "academic-essay",
    "name": "Academic Essay Grading",
    "category": "academic",
    "description": (
        "Argumentative and analytical essays for secondary and undergraduate courses, "
        "graded on thesis, evidence, organisation, analysis and style."
    ),
    "default_settings": {
        "provider": "builtin",
        "model": "builtin-v1",
        "temperature": 0.0,
        "instructions": (
            "You are an experienced writing instructor. Grade the essay strictly against the "
            "rubric, quote or point to the passage behind each score, and keep feedback "
            "constructive and specific."
        ),
        "expected_words": {"min": 600, "max": 2000},
        "rubric": {
            "criteria": [
                {
                    "key": "thesis",
                    "name": "Thesis and argument",
                    "description": "A clear, arguable thesis that the whole essay develops.",
                    "points": 20,
                    "keywords": ["thesis", "argue", "argument", "claim", "position", "therefore", "because"],
                    "levels": _levels(
                        20,
                        "Precise, arguable thesis stated early; every section advances it.",
                        "Clear thesis; most sections support it, with minor drift.",
                        "Thesis present but vague or merely descriptive; argument wanders.",
                        "No identifiable thesis; the essay summarises rather than argues.",
                    ),
                },
                {
                    "key": "evidence",
                    "name": "Evidence and support",
                    "description": "Relevant, specific and correctly attributed evidence.",
                    "points": 25,
                    "keywords": [
                        "evidence",
                        "example",
                        "source",
                        "study",
                        "data",
                        "according",
                        "research",
                        "cited",
                    ],
                    "levels": _levels(
                        25,
                        "Specific, well-chosen evidence from credible sources, accurately cited.",
                        "Relevant evidence for most claims; occasional generalisation.",
                        "Thin or generic evidence; several claims unsupported.",
                        "Little or no evidence; assertions stand alone.",
                    ),
                },
                {
                    "key": "organisation",
                    "name": "Organisation and structure",
                    "description": "Introduction, logically ordered body paragraphs, conclusion, transitions.",
                    "points": 20,
                    "keywords": [
                        "introduction",
                        "first",
                        "second",
                        "furthermore",
                        "however",
                        "finally",
                        "conclusion",
                        "in conclusion",
                    ],
                    "levels": _levels(
                        20,
                        "Purposeful structure with an engaging introduction, focused paragraphs and a conclusion that synthesises.",
                        "Logical order and paragraphing; transitions mostly effective.",
                        "Some paragraphs unfocused or out of order; abrupt transitions.",
                        "No discernible structure; ideas run together.",
                    ),
                },
                {
                    "key": "analysis",
                    "name": "Analysis and critical thinking",
                    "description": "Explains why the evidence matters and engages counterarguments.",
                    "points": 20,
                    "keywords": [
                        "suggests",
                        "implies",
                        "significance",
                        "counterargument",
                        "although",
                        "whereas",
                        "consequently",
                        "analysis",
                    ],
                    "levels": _levels(
                        20,
                        "Insightful analysis that interprets evidence and answers counterarguments.",
                        "Sound analysis; counterarguments acknowledged.",
                        "Analysis mostly restates evidence; counterarguments ignored.",
                        "No analysis beyond summary.",
                    ),
                },
                {
                    "key": "style",
                    "name": "Style, grammar and mechanics",
                    "description": "Clear, varied sentences, academic register, correct spelling and grammar.",
                    "points": 15,
                    "keywords": [],
                    "levels": _levels(
                        15,
                        "Fluent, varied prose in an academic register; virtually error-free.",
                        "Clear prose with a few errors that do not impede meaning.",
                        "Repetitive sentences or frequent errors that distract.",
                        "Errors obscure meaning throughout.",
                    ),
                },
            ]
        },
    },
    "job_structure": {"naming": "{batch} – {filename}", "per_model": True},
    "processing_rules": {
        "max_attempts": 3,
        "backoff_base_s": 2,
        "backoff_max_s": 120,
        "concurrency": 16,
        "stagger_ms": 0,
        "timeout_s": 60,
        "auto_start": True,
    },
}

BUSINESS_REPORT = {
    "slug": "business-report",
    "name": "Business Report Review",
    "category": "business",
    "description": (
        "Business reports, proposals and case analyses, reviewed for the executive summary, "
        "analysis, recommendations, structure and clarity."
    ),
    "default_settings": {
        "provider": "builtin",
        "model": "builtin-v1",
        "temperature": 0.0,
        "instructions": (
            "You are a senior management consultant reviewing a business report for an "
            "executive audience. Judge whether a decision-maker could act on it."
        ),
        "expected_words": {"min": 800, "max": 4000},
        "rubric": {
            "criteria": [
                {
                    "key": "executive_summary",
                    "name": "Executive summary",
                    "description": "States the purpose, key findings and recommendation up front.",
                    "points": 20,
                    "keywords": ["summary", "purpose", "objective", "findings", "recommend", "overview"],
                    "levels": _levels(
                        20,
                        "A reader learns the purpose, findings and recommendation from the summary alone.",
                        "Summary covers purpose and findings; recommendation implicit.",
                        "Summary is an introduction rather than a synopsis.",
                        "No executive summary.",
                    ),
                },
                {
                    "key": "analysis",
                    "name": "Analysis and use of data",
                    "description": "Sound analysis of the situation backed by figures, market and financial data.",
                    "points": 25,
                    "keywords": [
                        "revenue",
                        "cost",
                        "market",
                        "growth",
                        "margin",
                        "data",
                        "analysis",
                        "percent",
                        "customer",
                        "risk",
                    ],
                    "levels": _levels(
                        25,
                        "Rigorous analysis with quantified evidence, clear assumptions and risks.",
                        "Solid analysis with some data; assumptions partly stated.",
                        "Largely qualitative; figures sparse or unexplained.",
                        "Opinion without analysis or data.",
                    ),
                },
                {
                    "key": "recommendations",
                    "name": "Recommendations",
                    "description": "Specific, feasible, prioritised actions that follow from the analysis.",
                    "points": 25,
                    "keywords": [
                        "recommend",
                        "should",
                        "action",
                        "implement",
                        "timeline",
                        "budget",
                        "priority",
                        "next steps",
                    ],
                    "levels": _levels(
                        25,
                        "Specific, prioritised and costed actions with owners and a timeline.",
                        "Clear recommendations that follow from the analysis.",
                        "Recommendations generic or loosely tied to the analysis.",
                        "No actionable recommendation.",
                    ),
                },
                {
                    "key": "structure",
                    "name": "Structure and presentation",
                    "description": "Headings, logical sections, tables or lists where they help.",
                    "points": 15,
                    "keywords": ["introduction", "background", "findings", "conclusion", "appendix", "table"],
                    "levels": _levels(
                        15,
                        "Professional layout; headings let a reader navigate at a glance.",
                        "Clear sections with minor layout issues.",
                        "Some structure but hard to scan.",
                        "A wall of text.",
                    ),
                },
                {
                    "key": "clarity",
                    "name": "Clarity and professional tone",
                    "description": "Concise, plain business English with correct spelling and grammar.",
                    "points": 15,
                    "keywords": [],
                    "levels": _levels(
                        15,
                        "Concise, precise and professional throughout.",
                        "Generally clear; occasional wordiness or errors.",
                        "Wordy or informal; errors distract.",
                        "Unclear or unprofessional.",
                    ),
                },
            ]
        },
    },
    "job_structure": {"naming": "{batch} – {filename}", "per_model": True},
    "processing_rules": {
        "max_attempts": 3,
        "backoff_base_s": 2,
        "backoff_max_s": 120,
        "concurrency": 16,
        "stagger_ms": 0,
        "timeout_s": 90,
        "auto_start": True,
    },
}

RESEARCH_PAPER = {
    "slug": "research-paper",
    "name": "Research Paper Analysis",
    "category": "research",
    "description": (
        "Empirical research papers and theses, analysed for the research question, "
        "methodology, results, discussion and scholarly grounding."
    ),
    "default_settings": {
        "provider": "builtin",
        "model": "builtin-v1",
        "temperature": 0.0,
        "instructions": (
            "You are a peer reviewer for an academic journal. Assess the paper's rigour and "
            "contribution against the rubric and name the evidence for each score."
        ),
        "expected_words": {"min": 2000, "max": 10000},
        "rubric": {
            "criteria": [
                {
                    "key": "research_question",
                    "name": "Research question and contribution",
                    "description": "A focused question or hypothesis, motivated by a gap in the literature.",
                    "points": 20,
                    "keywords": [
                        "hypothesis",
                        "research question",
                        "gap",
                        "contribution",
                        "aim",
                        "objective",
                    ],
                    "levels": _levels(
                        20,
                        "Sharp, original question with a clearly argued contribution.",
                        "Clear question; contribution stated but modest.",
                        "Question broad or implicit; contribution unclear.",
                        "No identifiable question.",
                    ),
                },
                {
                    "key": "methodology",
                    "name": "Methodology",
                    "description": "Appropriate, reproducible design: sample, measures, procedure and analysis.",
                    "points": 25,
                    "keywords": [
                        "method",
                        "sample",
                        "participants",
                        "procedure",
                        "measure",
                        "design",
                        "regression",
                        "variable",
                        "control",
                    ],
                    "levels": _levels(
                        25,
                        "Rigorous, well-justified design described in enough detail to reproduce.",
                        "Appropriate design; some details or justifications missing.",
                        "Design has notable weaknesses or is sketchily described.",
                        "Method absent or unsuitable for the question.",
                    ),
                },
                {
                    "key": "results",
                    "name": "Results",
                    "description": "Results reported completely and accurately, with statistics and figures.",
                    "points": 20,
                    "keywords": [
                        "results",
                        "significant",
                        "table",
                        "figure",
                        "mean",
                        "p <",
                        "effect",
                        "confidence",
                    ],
                    "levels": _levels(
                        20,
                        "Complete, accurate results with effect sizes and clear tables or figures.",
                        "Results clear; minor gaps in reporting.",
                        "Results incomplete or hard to follow.",
                        "Results missing or unsupported by the data.",
                    ),
                },
                {
                    "key": "discussion",
                    "name": "Discussion and limitations",
                    "description": "Interprets results against the literature, states limitations and future work.",
                    "points": 20,
                    "keywords": [
                        "discussion",
                        "limitation",
                        "implication",
                        "future",
                        "consistent with",
                        "interpret",
                    ],
                    "levels": _levels(
                        20,
                        "Nuanced interpretation; limitations candid; implications and future work clear.",
                        "Reasonable interpretation; limitations listed.",
                        "Discussion restates results; limitations thin.",
                        "No discussion or overclaims the findings.",
                    ),
                },
                {
                    "key": "scholarship",
                    "name": "Literature and citations",
                    "description": "Engages relevant, current literature with consistent citations.",
                    "points": 15,
                    "keywords": ["et al", "literature", "prior work", "references", "review", "cited"],
                    "levels": _levels(
                        15,
                        "Comprehensive, current literature woven into the argument; citations consistent.",
                        "Relevant literature with minor citation issues.",
                        "Sparse or dated literature; inconsistent citations.",
                        "No engagement with the literature.",
                    ),
                },
            ]
        },
    },
    "job_structure": {"naming": "{batch} – {filename}", "per_model": True},
    "processing_rules": {
        "max_attempts": 3,
        "backoff_base_s": 2,
        "backoff_max_s": 120,
        "concurrency": 8,
        "stagger_ms": 0,
        "timeout_s": 120,
        "auto_start": False,
    },
}

PREBUILT_TEMPLATES = [ACADEMIC_ESSAY, BUSINESS_REPORT, RESEARCH_PAPER]
# What marks a template as pre-built (BatchTemplate.is_prebuilt): install() refreshes these by slug.
PREBUILT_SLUGS = frozenset(spec["slug"] for spec in PREBUILT_TEMPLATES)


def install(template_model) -> None:
    """Create or refresh the pre-built templates by slug: running it twice adds nothing."""
    for spec in PREBUILT_TEMPLATES:
        fields = {key: value for key, value in spec.items() if key != "slug"}
        template_model.objects.update_or_create(slug=spec["slug"], defaults={**fields, "is_public": True})
