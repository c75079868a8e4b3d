"""Every page fits its window from phone to wide desktop, and axe-core finds no WCAG 2.1 A/AA violation.

The pages are filled as a grader sees them after a day's work: a graded batch
with its charts, a draft at risk with three buttons on its row, a paused batch
past its deadline, a failed one a colleague shared, long names and tags.
Screenshots of each page at 390, 1280 and 1920 px go to test-artifacts/
(list-390.png, batch-1280.png, job-1920.png, new-390.png, inbox-390.png, queue-1920.png, ...).
"""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from batches.models import BatchStatus, InboxItem, JobBatch
from core.permissions import Level, share
from grading.models import Exemplar, GradingJob, JobStatus
from notifications.models import Channel, Event, Notification
from tests.browser.conftest import sign_in
from tests.conftest import make_batch, make_document, prebuilt, set_status
from tests.inbox_support import rule
from tests.review_support import calibrated_comparison_batch
from tests.test_batch_calibration import RAW, graded_batch
from tests.web_support import share_for_viewing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO = Path(__file__).resolve().parents[2] / "batches" / "demo"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
ESSAYS = ["strong_essay.txt", "average_essay.txt", "weak_essay.txt", "off_topic.txt"]

# Screenshots at these widths; the layout is checked at the others too.
SHOT_WIDTHS = (390, 1280, 1920)
FIT_WIDTHS = (360, 390, 768, 1024, 1280, 1440, 1920)
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def desk(owner, colleague, essay_template, tasks_inline, settings):
    """A grader's list after a day's work; returns the pages to look at."""
    now = timezone.now()
    # Connections as a school has them: a hosted gateway whose key is not set here (so it is
    # listed as not ready, with its sentence), and a model on the school's own server.
    settings.PROVIDERS = {
        "district-azure-gateway": {
            "kind": "openai",
            "base_url": "https://district-gateway.openai.azure.example.com/openai/deployments/v1",
            "key_env": "DISTRICT_AZURE_OPENAI_KEY",
        },
        "local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"},
    }
    graded = make_batch(
        owner,
        essay_template,
        jobs=0,
        name="Week 5 essays — English literature, seminar group B",
        description="Second-year essays on the Victorian novel, graded against the department's rubric.",
        tags=["english", "week-5", "seminar-b", "term-2"],
        priority=7,
        deadline=now + timedelta(days=3),
    )
    graded.add_documents([make_document(owner, name, (DEMO / name).read_text()) for name in ESSAYS])
    graded.start_batch()  # graded at once by the builtin grader (sync mode)
    graded.refresh_from_db()
    assert graded.status == BatchStatus.COMPLETED

    paused = make_batch(
        owner,
        prebuilt("research-paper"),
        jobs=3,
        name="Research papers, cohort 2024",
        priority=9,
        deadline=now - timedelta(hours=2),
    )
    set_status(paused, BatchStatus.PAUSED, JobStatus.QUEUED)
    draft = make_batch(
        owner,
        prebuilt("business-report"),
        jobs=2,
        name="Draft: quarterly business reports",
        tags=["business", "q3"],
        priority=3,
        deadline=now + timedelta(minutes=30),
    )
    late = make_batch(
        colleague, essay_template, jobs=2, name="Colin's marking", deadline=now - timedelta(days=1)
    )
    set_status(late, BatchStatus.FAILED)
    share_for_viewing(late, owner)
    # A batch's notices come grouped: the finish heads the milestones before it.
    for minutes, mark in ((40, 25), (30, 50), (20, 75)):
        Notification.objects.create(
            event=Event.PROGRESS_MILESTONE,
            key=str(mark),
            batch=graded,
            channel=Channel.IN_APP,
            recipient=owner,
            title=f"“{graded.name}” is {mark} % done",
            body=f"{mark} % of its jobs have ended.",
            created_at=now - timedelta(minutes=minutes),
            read_at=now if mark == 25 else None,
        )
    Notification.objects.create(
        event=Event.BATCH_FINISHED,
        key="done",
        batch=graded,
        channel=Channel.IN_APP,
        recipient=owner,
        title=f"“{graded.name}” finished",
        body="4 of 4 jobs completed.",
    )
    Notification.objects.create(
        event=Event.DEADLINE_WARNING,
        key="at_risk",
        batch=draft,
        channel=Channel.IN_APP,
        recipient=owner,
        title=f"“{draft.name}” is due in 30 minutes",
        body="2 jobs are not graded yet.",
    )
    job = GradingJob.objects.in_batch(graded).get(document__original_name="strong_essay.txt")
    queued = make_batch(
        colleague, essay_template, jobs=3, name="Colin's seminar essays, second reading", priority=8
    )
    set_status(queued, BatchStatus.PROCESSING, JobStatus.QUEUED)
    share_for_viewing(queued, owner)
    own_rule = rule(
        owner,
        "Essays by class, one batch per seminar group",
        1,
        extensions=[".txt", ".docx", ".pdf"],
        name_pattern="*_essay_*.txt",
        document_kind="essay",
        template=essay_template,
        group_by=r"^(\w+?)_",
        batch_name="{template} – {group} – {date}",
        tags=["english", "term-2"],
    )
    rule(owner, "Business reports into the draft", 2, document_kind="report", target_batch=draft)
    share(own_rule, colleague, Level.CHANGE)
    share(
        rule(colleague, "Colin's research papers", 1, document_kind="paper", template=essay_template),
        owner,
        Level.VIEW,
    )
    InboxItem.objects.create(
        document=make_document(owner, "shopping-list-not-an-essay.txt", "Milk, bread."),
        owner=owner,
        reason="No rule matched.",
    )
    # The editor with the longest pre-built rubric, copied: five criteria of four levels each.
    own_template = essay_template.copy_for(owner, name="Week 5 essays — the department's rubric, adapted")
    calibrated = calibrated_batch(owner)
    compared, _ = calibrated_comparison_batch(owner, name="Week 6 essays, two models, one calibrated")
    for name, score in (("strong_essay.txt", 88), ("weak_essay.txt", 31.5)):
        document = make_document(owner, f"Exemplar of the department – {name}", (DEMO / name).read_text())
        Exemplar.objects.create(template=own_template, document=document, score=score, owner=owner)
    return {
        "list": "/batches",
        "batch": f"/batches/{graded.pk}",
        "job": f"/batches/{graded.pk}/jobs/{job.pk}",
        "new": "/batches/new",
        "scratch": "/batches/new/scratch",
        "remove-job": f"/batches/{graded.pk}/jobs/{job.pk}/remove",
        "cancel": f"/batches/{paused.pk}/cancel",
        "edit": f"/batches/{paused.pk}/edit",
        "notifications": "/notifications",
        "account": "/account",
        "documents": f"/batches/{draft.pk}/documents",
        "delete": f"/batches/{graded.pk}/delete",
        "templates": "/templates",
        "template-editor": f"/templates/{own_template.pk}",
        "template-prebuilt": f"/templates/{prebuilt('research-paper').pk}",
        "not-found": "/batches/999999",
        "inbox": "/inbox",
        "rules": "/rules",
        "rule": f"/rules/{own_rule.pk}/edit",
        "queue": "/queue",
        "calibrated": f"/batches/{calibrated.pk}",
        "calibrated-job": f"/batches/{calibrated.pk}/jobs/{calibrated.jobs.order_by('pk').first().pk}",
        "compare": f"/batches/{compared.pk}/compare",
        "template-exemplars": f"/templates/{own_template.pk}/exemplars",
    }


def calibrated_batch(owner):
    """A graded batch whose teacher reviewed eight grades as exemplars, then calibrated it."""
    batch = graded_batch(owner, RAW)
    set_status(batch, BatchStatus.COMPLETED)
    JobBatch.objects.filter(pk=batch.pk).update(name="Week 6 essays, calibrated to the teacher's scale")
    for job in batch.jobs.order_by("pk").select_related("result")[:8]:
        ideas, conventions = job.result.criteria[0]["score"], job.result.criteria[1]["score"]
        job.result.record_review(owner, max(ideas + conventions - 2, 0), exemplar=True)
    batch.calibrate()
    return batch


def overflow(page) -> dict:
    """How far the page, and any scrolling table inside a card, is wider than its box."""
    return page.evaluate(
        r"""() => ({
            page: document.documentElement.scrollWidth - window.innerWidth,
            tables: [...document.querySelectorAll('.table-card, .table-wrap')]
                .filter(box => box.scrollWidth > box.clientWidth + 1)
                .map(box => (box.id || box.className) + ' by ' + (box.scrollWidth - box.clientWidth) + 'px'),
            captions: [...document.querySelectorAll('caption')]
                .filter(caption => caption.getClientRects().length && getComputedStyle(caption).position !== 'absolute'
                    && caption.getBoundingClientRect().width < caption.closest('table').getBoundingClientRect().width / 2)
                .map(caption => caption.textContent.trim()),
            words: brokenWords(),
        })
        function brokenWords() {
            // A short word in a table cell split across lines: its column was squeezed narrower
            // than the word ("Unknow|n"). Long names without spaces may break, and any word may
            // break after a hyphen, colon or slash ("openai:gpt-|4o-mini").
            const broken = [];
            const walker = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
            while (walker.nextNode()) {
                const node = walker.currentNode;
                const cell = node.parentElement.closest('td, th');
                // Visually hidden text (a stacked table's header row) is 1px wide on purpose.
                if (!cell || node.parentElement.getBoundingClientRect().width <= 1) continue;
                for (const match of node.textContent.matchAll(/[^\s:/-]{2,20}/g)) {
                    const range = document.createRange();
                    range.setStart(node, match.index);
                    range.setEnd(node, match.index + match[0].length);
                    const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
                    if (tops.size > 1) broken.push(match[0]);
                }
            }
            return [...new Set(broken)];
        }"""
    )


def test_every_page_fits_from_phone_to_wide_desktop(web, owner, desk, artifacts):
    sign_in(web, "olivia", "pw-olivia")
    problems = []
    for name, url in desk.items():
        web.set_viewport_size({"width": 1280, "height": 900})
        web.goto(url)
        expect(web.locator("main h1")).to_be_visible()
        for width in FIT_WIDTHS:
            web.set_viewport_size({"width": width, "height": 900})
            found = overflow(web)
            if found["page"] > 0:
                problems.append(f"{name} at {width}px: the page scrolls sideways by {found['page']}px")
            # On a desktop every table fits its card: no column is cut off behind a scrollbar.
            if found["tables"]:
                problems.append(f"{name} at {width}px: a table is wider than its card: {found['tables']}")
            # A stacked table's caption spans it, not one letter a line down its side.
            if found["captions"]:
                problems.append(f"{name} at {width}px: captions squeezed narrow: {found['captions']}")
            # At the widths of the screenshots (a phone, a laptop, a wide desktop): at 360 px a
            # table of four short columns may still have to break a word.
            if found["words"]:
                problems.append(f"{name} at {width}px: words broken in table cells: {found['words']}")
            if width in SHOT_WIDTHS:
                web.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
    assert not problems, "\n".join(problems)


def axe_violations(page) -> list[str]:
    """axe-core's WCAG 2.1 A and AA violations on the page, one line per element."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return results.violations.flatMap(v => v.nodes.map(
                n => `${v.id} (${v.impact}) at ${n.target.join(' ')}: ${n.failureSummary.replace(/\\s+/g, ' ')}`
            ));
        }""",
        WCAG_21_AA,
    )


def test_axe_core_finds_no_wcag_violation_on_any_page(web, owner, desk):
    web.goto("/accounts/login/")
    found = [f"sign-in: {violation}" for violation in axe_violations(web)]
    sign_in(web, "olivia", "pw-olivia")
    for width, names in (
        (1280, list(desk)),
        (
            390,
            [
                *(
                    "list",
                    "batch",
                    "job",
                    "new",
                    "scratch",
                    "template-editor",
                    "inbox",
                    "rules",
                    "rule",
                    "queue",
                ),
                *("calibrated", "calibrated-job", "compare", "template-exemplars"),
            ],
        ),
    ):
        web.set_viewport_size({"width": width, "height": 900})
        for name in names:
            web.goto(desk[name])
            expect(web.locator("main h1")).to_be_visible()
            found += [f"{name} at {width}px: {violation}" for violation in axe_violations(web)]
    assert not found, "\n".join(found)


def test_the_notifications_grouped_per_batch_fit_and_pass_axe_when_unfolded(web, owner, desk, artifacts):
    sign_in(web, "olivia", "pw-olivia")
    web.goto(desk["notifications"])
    history = web.locator("details.notice-history")
    expect(history).to_have_count(1)
    history.locator("summary").click()
    # The three milestones made here, and what grading the batch sent on its own.
    expect(history.locator("li").first).to_be_visible()
    problems = []
    for width in SHOT_WIDTHS:
        web.set_viewport_size({"width": width, "height": 900})
        found = overflow(web)
        if found["page"] > 0 or found["tables"] or found["captions"]:
            problems.append(f"unfolded notifications at {width}px: {found}")
        problems += [f"unfolded notifications at {width}px: {v}" for v in axe_violations(web)]
        web.screenshot(path=str(artifacts / f"notifications-unfolded-{width}.png"), full_page=True)
    assert not problems, "\n".join(problems)


def test_a_refused_exemplar_shows_its_problems_on_its_fields_and_fits_and_passes_axe(
    web, owner, desk, artifacts
):
    sign_in(web, "olivia", "pw-olivia")
    web.goto(desk["template-exemplars"])
    web.get_by_label("Your total score").fill("150")
    web.get_by_role("button", name="Add exemplar").click()
    expect(web.get_by_label("Your total score")).to_have_value("150")
    expect(web.get_by_label("Your total score")).to_have_accessible_description(
        "The score must be between 0 and 100."
    )
    expect(web.locator("#id_file_error")).to_have_text("Choose the document the score is for.")
    problems = []
    for width in SHOT_WIDTHS:
        web.set_viewport_size({"width": width, "height": 900})
        found = overflow(web)
        if found["page"] > 0 or found["tables"] or found["captions"] or found["words"]:
            problems.append(f"refused exemplar at {width}px: {found}")
        problems += [f"refused exemplar at {width}px: {v}" for v in axe_violations(web)]
        web.screenshot(path=str(artifacts / f"template-exemplars-refused-{width}.png"), full_page=True)
    assert not problems, "\n".join(problems)


# A name typed without a space: a file name as a learning platform exports it, repeated to 200 characters.
UNBROKEN = ("Mueller_Anna_40213_Hausarbeit_Endfassung_überarbeitet_" * 4)[:200]


def test_names_without_spaces_break_rather_than_widen_the_page(web, owner, essay_template, artifacts):
    template = essay_template.copy_for(owner, name=UNBROKEN)
    settings = template.default_settings
    settings["rubric"]["criteria"][0]["name"] = UNBROKEN
    template.save(update_fields=["default_settings"])
    batch = make_batch(owner, template, jobs=0, name=UNBROKEN, tags=[UNBROKEN[:50]])
    batch.add_documents([make_document(owner, f"{UNBROKEN[:150]}.txt", "An essay about parks. " * 40)])
    job = GradingJob.objects.in_batch(batch).get()
    pages = {
        "long-templates": "/templates",
        "long-template-editor": f"/templates/{template.pk}",
        "long-batch": f"/batches/{batch.pk}",
        "long-job": f"/batches/{batch.pk}/jobs/{job.pk}",
        "long-new": "/batches/new",
    }
    sign_in(web, "olivia", "pw-olivia")
    problems = []
    for name, url in pages.items():
        web.goto(url)
        expect(web.locator("main h1")).to_be_visible()
        for width in SHOT_WIDTHS:
            web.set_viewport_size({"width": width, "height": 900})
            found = overflow(web)
            if found["page"] > 0:
                problems.append(f"{name} at {width}px: the page scrolls sideways by {found['page']}px")
            web.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        problems += [f"{name} at {width}px: {violation}" for violation in axe_violations(web)]
    assert not problems, "\n".join(problems)
