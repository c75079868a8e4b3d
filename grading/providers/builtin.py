"""An offline grader that scores a document against a rubric from measurable text features.

It needs no network and no key, so a fresh install can grade; and it is deterministic, so the
same document, rubric and exemplars always get the same grade. The work is done by
`grading.essay`: features of the text (length and development, vocabulary range and rarity,
spelling against a real dictionary, sentence variety, cohesion, conventions, overlap with the
task and with the exemplars), combined by a prior over the aspect each criterion names, or by a
ridge model fitted on the teacher's exemplars when the request carries them; criterion scores
land on the rubric's levels and the feedback quotes the sentences it refers to.
"""

from __future__ import annotations

from grading.essay import feedback, grader, lexicon
from grading.providers.base import (
    CriterionGrade,
    Grade,
    GradeRequest,
    PermanentProviderError,
    Provider,
    ProviderLimits,
    Tokenizer,
    criteria_of,
    require_text,
)


class BuiltinProvider(Provider):
    name = "builtin"
    # Runs in the worker's own process: no limits to keep, nothing to pay, no prompt sent.
    offline = True
    needs_key = False
    TOKENIZER = Tokenizer("chars/4", "characters / 4, as the builtin grader itself reports tokens")

    @classmethod
    def problem(cls, model: str) -> str | None:
        if model and not model.startswith("builtin"):
            return f"The builtin grader has one model, builtin-v1; “{model}” belongs to another provider."
        return None

    @classmethod
    def limits(cls) -> ProviderLimits:
        return ProviderLimits(source="none: the builtin grader runs in the worker's own process")

    @classmethod
    def is_priced(cls, model: str) -> bool:
        return True  # free, and known to be

    @classmethod
    def price_method(cls, model: str) -> str:
        return "the builtin grader runs offline and costs nothing"

    @classmethod
    def tokenizer(cls, model: str) -> Tokenizer:
        return cls.TOKENIZER

    def grade(self, request: GradeRequest) -> Grade:
        require_text(request)
        criteria_of(request.rubric)
        plan, scored = grader.grade(request.text, request.rubric, request.settings or {}, request.exemplars)
        if not scored.essay.word_count:
            name = f" “{request.document_name}”" if request.document_name else ""
            raise PermanentProviderError(
                f"The document{name} has no words the builtin grader can read: it grades written text."
            )
        evidence = feedback.Evidence(scored.essay, plan)
        graded = [
            CriterionGrade(
                key=criterion.key,
                name=criterion.name,
                score=score,
                max_score=criterion.points,
                feedback=feedback.criterion_feedback(criterion, score, evidence),
            )
            for criterion, score in zip(plan.criteria, scored.scores, strict=True)
        ]
        overall = feedback.overall_feedback(
            [item.name for item in graded],
            [item.score for item in graded],
            [item.max_score for item in graded],
            scored.qualities,
            evidence,
            scored.fit.exemplars if scored.fit.total is not None else 0,
            scored.fit.exemplars if scored.fit.offset is not None else None,
        )
        output_chars = len(overall) + sum(len(item.feedback) for item in graded)
        return Grade(
            score=sum(item.score for item in graded),
            max_score=sum(item.max_score for item in graded),
            criteria=graded,
            feedback=overall,
            input_tokens=max(1, len(request.text) // 4),
            output_tokens=output_chars // 4,
            raw={"features": features_summary(scored), "model": model_summary(scored)},
            model=request.model or "builtin",
        )


def features_summary(scored: grader.Scored) -> dict:
    essay = scored.essay
    lengths = [len(sentence.words) for sentence in essay.sentences] or [0]
    return {
        "word_count": essay.word_count,
        "sentences": len(essay.sentences),
        "paragraphs": essay.paragraphs,
        "headings": essay.headings,
        "mean_sentence_words": round(sum(lengths) / len(lengths), 1),
        "mattr": round(essay.value("mattr"), 3),
        "root_ttr": round(essay.value("root_ttr"), 2),
        "rare_word_share": round(essay.value("rare_words"), 3),
        "likely_misspellings": len(essay.misspelt),
        "english_word_share": round(lexicon.english_share(essay.bag), 3),
        "linking_words": sum(essay.connectives.values()),
        "citations": essay.citations,
    }


def model_summary(scored: grader.Scored) -> dict:
    fit = scored.fit
    learnt = fit.total is not None
    return {
        "method": "prior on the exemplars' scale"
        if learnt and fit.total.from_prior
        else "ridge on exemplars"
        if learnt
        else "prior at the exemplars' level"
        if fit.offset is not None
        else "prior",
        "exemplars": fit.exemplars,
        "criteria_learnt": sorted(fit.criteria),
        "predicted_total": round(scored.predicted, 3),
        "quality": [round(quality, 3) for quality in scored.qualities],
    }
