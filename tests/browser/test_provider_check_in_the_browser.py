"""The new-batch and edit pages flag a provider that could not grade here as soon as it is chosen."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conftest import make_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FLAG = "This batch could not start with this choice"


def test_choosing_a_provider_that_cannot_grade_is_flagged_at_once_and_cleared_when_fixed(
    web, owner, essay_template
):
    sign_in(web, "olivia", "pw-olivia")
    web.goto("/batches/new")
    check = web.locator("#provider-check")
    expect(check).to_be_empty()

    web.get_by_label("Provider").select_option("openai")
    expect(check).to_contain_text(FLAG)
    expect(check).to_contain_text("“builtin-v1” is the builtin grader's model")

    web.get_by_label("Model", exact=True).fill("gpt-4o-mini")
    web.get_by_label("Model", exact=True).blur()
    expect(check).not_to_contain_text("builtin-v1")


def test_the_edit_page_flags_a_provider_as_it_is_chosen(web, owner, essay_template):
    batch = make_batch(owner, essay_template, jobs=1)
    sign_in(web, "olivia", "pw-olivia")
    web.goto(f"/batches/{batch.pk}/edit")
    check = web.locator("#provider-check")
    expect(check).to_be_empty()

    web.get_by_label("Provider").select_option("openai")

    expect(check).to_contain_text("“builtin-v1” is the builtin grader's model")
    web.get_by_label("Provider").select_option("builtin")
    expect(check).to_be_empty()
