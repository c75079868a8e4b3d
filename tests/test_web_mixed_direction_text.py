"""Names and feedback typed in Arabic or Hebrew keep their order beside Latin text.

Every place a page shows text a person typed isolates it (<bdi>, or dir="auto" on a block),
and every input for such text carries dir="auto", so "مقالات Term 1" is not reordered by the
Latin around it.
"""

import copy
import re

import pytest

from batches.models import JobBatch
from grading.models import GradingJob, GradingResult, JobStatus
from templates_app.models import BatchTemplate
from tests.conftest import make_batch, make_document
from tests.inbox_support import rule

pytestmark = pytest.mark.django_db

BATCH = "مقالات Term 1"
TEMPLATE = "قالب essay"
RULE = "قاعدة Essays"
DOCUMENT = "مقال-ada.txt"
CRITERION = "الأطروحة Thesis"
FEEDBACK = "حجة واضحة, clear claim."


@pytest.fixture
def world(owner, essay_template):
    settings = copy.deepcopy(essay_template.default_settings)
    settings["rubric"]["criteria"][0]["name"] = CRITERION
    template = BatchTemplate.objects.create(
        name=TEMPLATE,
        slug="arabic-essay",
        description="وصف description",
        default_settings=settings,
        owner=owner,
    )
    batch = make_batch(owner, template, jobs=0, name=BATCH, description="وصف الدفعة")
    batch.add_documents([make_document(owner, DOCUMENT)])
    job = batch.jobs.get()
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    GradingResult.objects.create(
        job=job,
        provider="builtin",
        model="builtin-v1",
        score=14,
        max_score=20,
        criteria=[{"key": "thesis", "name": CRITERION, "score": 14, "max_score": 20, "feedback": FEEDBACK}],
        feedback="ملاحظات overall",
    )
    made = rule(owner, RULE, 1, target_batch=batch)
    return batch, job, template, made


def shown_without_isolation(html: str, text: str) -> list[str]:
    """Each place `text` shows as page text without an open <bdi> around it.

    Attribute values, <title>, <option> and SVG are left out: none of them may hold a <bdi>.
    """
    html = re.sub(r"<(title|option|svg)\b.*?</\1>", "", html, flags=re.S)
    hits = []
    for m in re.finditer(re.escape(text), html):
        before = html[: m.start()]
        if before.rfind("<") > before.rfind(">"):
            continue
        if before.rfind("<bdi>") <= before.rfind("</bdi>"):
            hits.append(html[max(0, m.start() - 60) : m.end()])
    return hits


def page(client, owner, url: str) -> str:
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


@pytest.mark.parametrize(
    "where",
    [
        "/batches",
        "/batches/{batch}",
        "/batches/{batch}/jobs/{job}",
        "/batches/{batch}/edit",
        "/templates",
        "/templates/{template}",
        "/rules",
        "/rules/{rule}/edit",
    ],
)
def test_a_name_in_arabic_is_isolated_wherever_a_page_shows_it(client, owner, world, where):
    batch, job, template, made = world
    html = page(client, owner, where.format(batch=batch.pk, job=job.pk, template=template.pk, rule=made.pk))

    shown = [name for name in (BATCH, TEMPLATE, RULE, DOCUMENT, CRITERION) if name in html]
    assert shown
    for name in shown:
        assert shown_without_isolation(html, name) == [], f"{name} shown without <bdi> on {where}"


def test_feedback_and_the_document_text_are_laid_out_by_their_own_direction(client, owner, world):
    batch, job, _, _ = world
    html = page(client, owner, f"/batches/{batch.pk}/jobs/{job.pk}")

    assert f"<bdi>{FEEDBACK}</bdi>" in html
    assert re.search(r'<div dir="auto"><p>ملاحظات overall</p></div>', html)
    assert re.search(r'class="document-text" dir="auto"', html)


@pytest.mark.parametrize(
    "where, field",
    [
        ("/batches/{batch}/edit", "name"),
        ("/batches/{batch}/edit", "description"),
        ("/templates/{template}", "name"),
        ("/templates/new", "name"),
        ("/rules/new", "name"),
        ("/batches", "search"),
    ],
)
def test_an_input_for_typed_text_takes_the_direction_of_what_is_typed(client, owner, world, where, field):
    batch, _, template, _ = world
    html = page(client, owner, where.format(batch=batch.pk, template=template.pk))

    control = re.search(rf'<(input|textarea)[^>]*\bname="{field}"[^>]*>', html)
    assert control, f"no {field} on {where}"
    assert 'dir="auto"' in control.group(0)


def test_a_number_input_keeps_its_left_to_right_layout(client, owner, world):
    batch, _, _, _ = world
    html = page(client, owner, f"/batches/{batch.pk}/edit")

    assert all('dir="auto"' not in tag for tag in re.findall(r'<input[^>]*type="number"[^>]*>', html))
    assert JobBatch.objects.get(pk=batch.pk).name == BATCH
