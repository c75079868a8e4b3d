"""A teacher edits a rubric in Chromium: copies a pre-built template, adds a criterion and a level,
moves a criterion, sees an error on its field, fixes it and saves. The editor's script adds, moves
and renumbers the rows in place; the server reads them back in the order shown."""

import pytest
from playwright.sync_api import expect

from templates_app.models import BatchTemplate
from tests.browser.conftest import browser_tab, sign_in
from tests.browser.test_pages_fit_and_are_accessible import axe_violations
from tests.conftest import prebuilt

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def criterion(web, number: int):
    return web.locator(f"#criterion-{number}")


def test_a_teacher_adds_a_criterion_and_a_level_fixes_an_error_on_its_field_and_saves(web, owner, artifacts):
    essay = prebuilt("academic-essay")
    sign_in(web, "olivia", "pw-olivia")

    # The pre-built template is read-only: the teacher copies it.
    web.get_by_role("link", name="Templates").click()
    web.get_by_role("link", name=essay.name, exact=True).click()
    expect(web.get_by_text("A pre-built template stays as it is")).to_be_visible()
    web.get_by_role("button", name="Copy", exact=True).click()
    expect(web.get_by_role("heading", level=1)).to_have_text(f"Edit “{essay.name} (copy)”")
    copy = BatchTemplate.objects.get(owner=owner)
    shown = web.locator("[data-criteria-list] > [data-criterion]").count()  # five criteria and a blank row

    # A new criterion, added in place by the script: no page load, the focus on its name.
    web.get_by_role("button", name="Add criterion").click()
    added = criterion(web, shown + 1)
    expect(added.get_by_label("Name")).to_be_focused()
    expect(web.get_by_role("status").filter(has_text="Added criterion")).to_have_text(
        f"Added criterion {shown + 1}."
    )
    added.get_by_label("Name").fill("Use of sources")
    added.get_by_label("Points").fill("10")
    added.get_by_label("What it looks for").fill("Quotes are introduced and cited.")
    added.get_by_role("button", name=f"Add level to criterion {shown + 1}").click()
    level = added.locator("[data-level]").first
    expect(level.get_by_label("Label")).to_be_focused()
    level.get_by_label("Label").fill("Excellent")
    level.get_by_label("Score").fill("12")  # more than the criterion's 10: an error
    level.get_by_label("Description").fill("Every quotation is introduced, relevant and cited.")

    # The new criterion goes above the blank row: one move up.
    added.get_by_role("button", name=f"Move up criterion {shown + 1}").click()
    moved = criterion(web, shown)
    expect(moved.get_by_label("Name")).to_have_value("Use of sources")
    expect(moved.get_by_role("button", name=f"Move up criterion {shown}")).to_be_focused()

    web.get_by_role("button", name="Save template", exact=True).click()

    expect(web.get_by_role("alert")).to_contain_text("Not saved")
    error = web.locator(f"#id_criterion-{shown - 1}-points_error")
    expect(error).to_contain_text("more than the criterion's 10")
    expect(criterion(web, shown).get_by_label("Points")).to_have_attribute(
        "aria-describedby", f"id_criterion-{shown - 1}-points_error"
    )
    expect(criterion(web, shown).locator("[data-level]").first.get_by_label("Description")).to_have_value(
        "Every quotation is introduced, relevant and cited."
    )
    web.screenshot(path=str(artifacts / "template-editor-error.png"), full_page=True)
    assert not axe_violations(web)

    criterion(web, shown).locator("[data-level]").first.get_by_label("Score").fill("10")
    web.get_by_role("button", name="Save template", exact=True).click()

    expect(web.get_by_role("status").filter(has_text="Saved the template")).to_be_visible()
    copy.refresh_from_db()
    criteria = copy.default_settings["rubric"]["criteria"]
    assert len(criteria) == shown
    assert (criteria[-1]["key"], criteria[-1]["name"], criteria[-1]["points"]) == (
        "use_of_sources",
        "Use of sources",
        10,
    )
    assert criteria[-1]["levels"] == [
        {
            "label": "Excellent",
            "points": 10,
            "descriptor": "Every quotation is introduced, relevant and cited.",
        }
    ]
    assert [c["key"] for c in criteria[:-1]] == [
        c["key"] for c in essay.default_settings["rubric"]["criteria"]
    ]


def test_removing_and_reordering_levels_in_place_saves_them_in_the_order_shown(web, owner):
    essay = prebuilt("academic-essay")
    copy = essay.copy_for(owner)
    sign_in(web, "olivia", "pw-olivia")
    web.goto(f"/templates/{copy.pk}")

    first = criterion(web, 1)
    first.get_by_role("button", name="Remove level 2 of criterion 1").click()
    first.get_by_role("button", name="Down level 1 of criterion 1").click()
    expect(first.locator("[data-level]").nth(1).get_by_label("Label")).to_have_value("Excellent")
    web.get_by_role("button", name="Save template", exact=True).click()

    expect(web.get_by_role("status").filter(has_text="Saved the template")).to_be_visible()
    copy.refresh_from_db()
    labels = [level["label"] for level in copy.default_settings["rubric"]["criteria"][0]["levels"]]
    assert labels == ["Developing", "Excellent", "Weak"]


def test_without_javascript_the_row_buttons_post_back_and_the_teacher_saves_the_same_way(
    chromium, live_server, owner
):
    copy = prebuilt("business-report").copy_for(owner)
    rows = len(copy.default_settings["rubric"]["criteria"])
    with browser_tab(chromium, live_server.url, java_script_enabled=False) as web:
        sign_in(web, "olivia", "pw-olivia")
        web.goto(f"/templates/{copy.pk}")
        web.locator("#id_name").fill("Business reports, second year")

        web.get_by_role("button", name="Add criterion").click()
        expect(web.get_by_role("status").filter(has_text="Added criterion")).to_have_text(
            f"Added criterion {rows + 2}."
        )
        expect(web.locator("#id_name")).to_have_value("Business reports, second year")
        added = criterion(web, rows + 2)
        expect(added.get_by_label("Name")).to_be_focused()
        added.get_by_label("Name").fill("Audience")
        added.get_by_label("Points").fill("5")
        added.get_by_role("button", name=f"Move up criterion {rows + 2}").click()
        expect(criterion(web, rows + 1).get_by_label("Name")).to_have_value("Audience")
        criterion(web, rows + 1).get_by_role("button", name=f"Add level to criterion {rows + 1}").click()
        level = criterion(web, rows + 1).locator("[data-level]").first
        expect(level.get_by_label("Label")).to_be_focused()
        level.get_by_label("Label").fill("Spot on")
        level.get_by_label("Score").fill("5")
        web.get_by_role("button", name="Save template", exact=True).click()

        expect(web.get_by_role("status").filter(has_text="Saved the template")).to_be_visible()
    copy.refresh_from_db()
    assert copy.name == "Business reports, second year"
    last = copy.default_settings["rubric"]["criteria"][-1]
    assert (last["name"], last["points"], last["levels"][0]["label"]) == ("Audience", 5, "Spot on")
    assert len(copy.default_settings["rubric"]["criteria"]) == rows + 1


def test_adding_rows_in_place_stops_where_the_server_would_refuse_the_whole_form(web, owner):
    # Past 30 criterion rows (or 15 levels) the server refuses the post before reading any field:
    # the script must not let a teacher type a rubric the save would throw away.
    sign_in(web, "olivia", "pw-olivia")
    web.goto("/templates/new")
    web.get_by_label("Template name").fill("Fifty criteria")
    rows = web.locator("[data-criteria-list] > [data-criterion]")
    for _ in range(40):
        web.get_by_role("button", name="Add criterion").click()
    expect(rows).to_have_count(30)
    expect(web.get_by_role("status")).to_have_text("The editor takes at most 30 criterion rows.")
    first = criterion(web, 1)
    for _ in range(20):
        first.get_by_role("button", name="Add level to criterion 1").click()
    expect(first.locator("[data-level]")).to_have_count(15)
    expect(web.get_by_role("status")).to_have_text("The editor takes at most 15 level rows per criterion.")
    first.get_by_label("Name").first.fill("Thesis")
    first.get_by_label("Points").first.fill("10")

    web.get_by_role("button", name="Create template", exact=True).click()

    # The blank rows are left out: the rubric typed is saved.
    expect(web.get_by_role("heading", level=1)).to_have_text("Edit “Fifty criteria”")
    saved = BatchTemplate.objects.get(owner=owner)
    assert [c["name"] for c in saved.default_settings["rubric"]["criteria"]] == ["Thesis"]
