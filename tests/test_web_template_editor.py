"""The template editor on the web: list, create, edit with errors on their fields, reorder, copy, delete.

Pre-built templates are read-only and copied; a view-only share sees a
template read-only; a stranger gets a 404. "Save as template" makes a new
template of the user's from a batch's settings.
"""

import pytest

from batches.models import JobBatch
from core.permissions import Level, share
from templates_app.models import BatchTemplate
from tests.conftest import make_batch, prebuilt, set_status
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(owner) -> BatchTemplate:
    return BatchTemplate.objects.create(
        name="Lab reports",
        slug="lab-reports",
        category="research",
        owner=owner,
        default_settings={
            "provider": "builtin",
            "instructions": "Grade the lab report.",
            "rubric": {
                "criteria": [
                    {
                        "key": "method",
                        "name": "Method",
                        "points": 10,
                        "levels": [
                            {"label": "Clear", "points": 10, "descriptor": "Every step can be repeated."},
                            {"label": "Vague", "points": 4, "descriptor": "Steps are missing."},
                        ],
                    },
                    {"key": "results", "name": "Results", "points": 20},
                    {"key": "discussion", "name": "Discussion", "points": 15},
                ]
            },
        },
        processing_rules={"concurrency": 4},
    )


def posted(form) -> dict[str, str]:
    """What a browser posts for the form as the page shows it (a ticked box as "on")."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is True:
            data[name] = "on"
        elif value not in (None, False):
            data[name] = ", ".join(value) if isinstance(value, list) else str(value)
    return data


def editor(client, url: str) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200
    return posted(response.context["form"])


def errors_on(response, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


# --- the list -------------------------------------------------------------------------------------


def test_the_list_shows_the_users_own_shared_and_prebuilt_templates_but_not_a_strangers(
    client, owner, colleague, stranger, template
):
    theirs = BatchTemplate.objects.create(
        name="Colin's private rubric", slug="colins", default_settings={}, owner=colleague
    )
    shared = BatchTemplate.objects.create(
        name="Colin's shared rubric", slug="colins-shared", default_settings={}, owner=colleague
    )
    share(shared, owner, Level.VIEW)
    prebuilt()
    client.force_login(owner)

    page = client.get("/templates").content.decode()

    assert "Lab reports" in page and "Colin&#x27;s shared rubric" in page and "Academic Essay Grading" in page
    assert theirs.name.replace("'", "&#x27;") not in page
    assert "Pre-built" in page


# --- creating and editing -----------------------------------------------------------------------


def test_a_teacher_creates_a_template_with_criteria_and_levels(client, owner):
    client.force_login(owner)
    data = editor(client, "/templates/new")
    data.update(
        {
            "name": "Poetry analysis",
            "category": "academic",
            "instructions": "Read closely.",
            "criterion-0-name": "Close reading",
            "criterion-0-points": "30",
            "criterion-0-keywords": "image, metre, image",
            "criterion-1-name": "Context",
            "criterion-1-points": "20",
            "concurrency": "6",
            "op": "save",
        }
    )
    data.update(
        {"criterion-0-levels": "1", "criterion-0-level-0-label": "Sharp", "criterion-0-level-0-points": "30"}
    )

    response = client.post("/templates/new", data)

    created = BatchTemplate.objects.get(name="Poetry analysis")
    assert response.status_code == 302 and response["Location"] == f"/templates/{created.pk}"
    assert created.owner == owner and created.slug == "poetry-analysis" and not created.is_public
    criteria = created.default_settings["rubric"]["criteria"]
    assert [(c["key"], c["name"], c["points"]) for c in criteria] == [
        ("close_reading", "Close reading", 30),
        ("context", "Context", 20),
    ]
    assert criteria[0]["keywords"] == ["image", "metre"]
    assert criteria[0]["levels"] == [{"label": "Sharp", "points": 30, "descriptor": ""}]
    assert created.default_settings["instructions"] == "Read closely."
    assert created.processing_rules == {"concurrency": 6, "auto_start": False}


def test_a_template_without_any_criterion_is_refused_on_the_rubric(client, owner):
    client.force_login(owner)
    data = {**editor(client, "/templates/new"), "name": "Empty", "op": "save"}

    response = client.post("/templates/new", data)

    assert response.status_code == 400
    assert "Add at least one criterion" in errors_on(response, "criteria_count")[0]
    assert not BatchTemplate.objects.filter(name="Empty").exists()


def test_each_error_appears_on_its_own_field_and_what_was_typed_is_kept(client, owner, template):
    client.force_login(owner)
    data = editor(client, f"/templates/{template.pk}")
    data.update(
        {
            "criterion-2-points": "-5",
            "criterion-0-level-1-descriptor": "x" * 2001,
            "criterion-1-name": "Results, renamed",
            "temperature": "7",
            "op": "save",
        }
    )

    response = client.post(f"/templates/{template.pk}", data)

    assert response.status_code == 400
    assert errors_on(response, "criterion-2-points") == ["Input should be greater than 0"]
    assert "at most 2000 characters" in errors_on(response, "criterion-0-level-1-descriptor")[0]
    assert "less than or equal to 2" in errors_on(response, "temperature")[0]
    page = response.content.decode()
    assert 'value="-5"' in page and 'value="Results, renamed"' in page
    assert 'id="id_criterion-2-points_error"' in page
    template.refresh_from_db()
    assert template.default_settings["rubric"]["criteria"][2]["points"] == 15  # nothing stored


def test_a_level_worth_more_than_its_criterion_is_flagged_on_the_criterions_points(client, owner, template):
    client.force_login(owner)
    data = {**editor(client, f"/templates/{template.pk}"), "criterion-0-level-0-points": "12", "op": "save"}

    response = client.post(f"/templates/{template.pk}", data)

    assert response.status_code == 400
    assert "more than the criterion's 10" in errors_on(response, "criterion-0-points")[0]


def test_a_half_filled_row_asks_for_what_it_lacks_on_its_fields(client, owner, template):
    client.force_login(owner)
    data = editor(client, f"/templates/{template.pk}")
    data.update({"criterion-3-points": "5", "criterion-1-points": "", "op": "save"})
    data.update({"criterion-0-level-1-label": "", "criterion-0-level-1-points": "abc"})

    response = client.post(f"/templates/{template.pk}", data)

    assert response.status_code == 400
    assert errors_on(response, "criterion-3-name") == ["Name the criterion, or clear the whole row."]
    assert errors_on(response, "criterion-1-points") == ["Give the criterion its points."]
    assert errors_on(response, "criterion-0-level-1-label") == ["Name the level (Excellent, Good, …)."]
    assert errors_on(response, "criterion-0-level-1-points") == ["Enter a number."]


def test_a_taken_short_name_and_half_an_expected_length_are_refused_on_their_fields(client, owner, template):
    client.force_login(owner)
    prebuilt()
    data = {**editor(client, f"/templates/{template.pk}"), "slug": "academic-essay", "words_min": "300"}

    response = client.post(f"/templates/{template.pk}", {**data, "op": "save"})

    assert response.status_code == 400
    assert errors_on(response, "words_max") == ["Give both ends of the expected length, or neither."]
    data["words_max"] = "900"
    response = client.post(f"/templates/{template.pk}", {**data, "op": "save"})
    assert errors_on(response, "slug") == ["Another template has this slug."]


def test_saving_untouched_keeps_every_criterion_key_level_and_rule(client, owner, template):
    before = (template.default_settings["rubric"], template.processing_rules["concurrency"])
    client.force_login(owner)

    response = client.post(
        f"/templates/{template.pk}", {**editor(client, f"/templates/{template.pk}"), "op": "save"}
    )

    assert response.status_code == 302
    assert messages_of(response) == ["Saved the template “Lab reports”."]
    template.refresh_from_db()
    rubric = template.default_settings["rubric"]
    assert [c["key"] for c in rubric["criteria"]] == ["method", "results", "discussion"]
    assert rubric["criteria"][0]["levels"] == before[0]["criteria"][0]["levels"]
    assert template.processing_rules["concurrency"] == before[1]


def test_moving_a_criterion_up_without_javascript_reorders_the_rows_and_saving_keeps_the_order(
    client, owner, template
):
    client.force_login(owner)
    data = editor(client, f"/templates/{template.pk}")
    data["criterion-2-name"] = "Discussion, typed before the move"

    moved = client.post(f"/templates/{template.pk}", {**data, "op": "up:2"})

    assert moved.status_code == 200
    assert moved.context["said"] == "Criterion 3 moved up: it is now number 2."
    shown = posted(moved.context["form"])
    assert (shown["criterion-1-key"], shown["criterion-1-name"]) == (
        "discussion",
        "Discussion, typed before the move",
    )
    assert shown["criterion-2-key"] == "results"
    assert not moved.context["form"].errors  # nothing is checked before saving
    saved = client.post(f"/templates/{template.pk}", {**shown, "op": "save"})
    assert saved.status_code == 302
    template.refresh_from_db()
    assert [c["key"] for c in template.default_settings["rubric"]["criteria"]] == [
        "method",
        "discussion",
        "results",
    ]


def test_add_and_remove_buttons_post_back_with_the_rows_changed_and_the_rest_kept(client, owner, template):
    client.force_login(owner)
    data = {**editor(client, f"/templates/{template.pk}"), "name": "Lab reports, typed"}

    added = client.post(f"/templates/{template.pk}", {**data, "op": "add-level:1"})
    with_level = posted(added.context["form"])
    removed = client.post(f"/templates/{template.pk}", {**with_level, "op": "remove-criterion:0"})
    left = posted(removed.context["form"])
    more = client.post(f"/templates/{template.pk}", {**left, "op": "add-criterion"})

    assert with_level["criterion-1-levels"] == "1" and "criterion-1-level-0-label" in added.content.decode()
    assert added.context["said"] == "Added level 1 to criterion 2."
    assert left["criteria_count"] == "3" and left["criterion-0-key"] == "results"
    assert left["name"] == "Lab reports, typed"
    assert more.context["said"] == "Added criterion 4."
    template.refresh_from_db()
    assert template.name == "Lab reports"  # nothing saved until "Save template"


def test_without_a_script_the_row_a_button_changed_takes_the_focus(client, owner, template):
    client.force_login(owner)
    data = editor(client, f"/templates/{template.pk}")

    added = client.post(f"/templates/{template.pk}", {**data, "op": "add-criterion"}).content.decode()
    moved = client.post(f"/templates/{template.pk}", {**data, "op": "down:0"}).content.decode()

    assert '<input type="text" name="criterion-4-name" dir="auto" maxlength="200" autofocus' in added
    assert (
        '<input type="text" name="criterion-1-name" value="Method" dir="auto" maxlength="200" autofocus'
        in moved
    )


def test_a_batch_made_from_the_template_after_a_save_grades_with_the_new_rubric(client, owner, template):
    client.force_login(owner)
    data = {**editor(client, f"/templates/{template.pk}"), "criterion-1-points": "25", "op": "save"}
    client.post(f"/templates/{template.pk}", data)

    batch = make_batch(owner, BatchTemplate.objects.get(pk=template.pk), jobs=1)

    rubric = batch.validated_settings().rubric
    assert [(c.key, c.points) for c in rubric.criteria] == [
        ("method", 10),
        ("results", 25),
        ("discussion", 15),
    ]


def test_blank_rows_are_left_out(client, owner, template):
    client.force_login(owner)
    data = editor(client, f"/templates/{template.pk}")
    assert data["criteria_count"] == "4"  # three criteria and a blank row

    client.post(f"/templates/{template.pk}", {**data, "op": "save"})

    template.refresh_from_db()
    assert len(template.default_settings["rubric"]["criteria"]) == 3


def test_an_unknown_button_or_too_many_rows_is_a_400_with_a_sentence(client, owner, template):
    client.force_login(owner)
    data = editor(client, f"/templates/{template.pk}")

    unknown = client.post(f"/templates/{template.pk}", {**data, "op": "explode:1"})
    too_many = client.post(f"/templates/{template.pk}", {**data, "criteria_count": "5000", "op": "save"})

    assert unknown.status_code == 400 and b"no such button" in unknown.content
    assert too_many.status_code == 400 and b"at most 30 rows" in too_many.content


# --- pre-built templates and access ---------------------------------------------------------------


def test_a_prebuilt_template_is_shown_read_only_with_a_copy_button(client, owner):
    essay = prebuilt()
    client.force_login(owner)

    response = client.get(f"/templates/{essay.pk}")

    page = response.content.decode()
    assert response.status_code == 200 and "form" not in response.context
    assert "Pre-built" in page and "Thesis and argument" in page and "Excellent" in page
    assert f'action="/templates/{essay.pk}/copy"' in page and "Save template" not in page


@pytest.mark.parametrize("persona", ["owner", "superuser"])
def test_a_save_posted_to_a_prebuilt_template_is_refused_with_409_and_changes_nothing(
    client, persona, request
):
    essay = prebuilt()
    before = essay.default_settings
    client.force_login(request.getfixturevalue(persona))

    response = client.post(f"/templates/{essay.pk}", {"name": "Mine now", "op": "save"})

    assert response.status_code == 409
    assert "pre-built template and stays as it is" in response.content.decode()
    essay.refresh_from_db()
    assert (essay.name, essay.default_settings) == ("Academic Essay Grading", before)


def test_copying_a_prebuilt_template_makes_an_editable_copy_of_the_users_own(client, owner):
    essay = prebuilt()
    client.force_login(owner)

    response = client.post(f"/templates/{essay.pk}/copy")

    copy = BatchTemplate.objects.get(owner=owner)
    assert response["Location"] == f"/templates/{copy.pk}"
    assert copy.name == "Academic Essay Grading (copy)" and copy.slug == "academic-essay-grading-copy"
    assert copy.default_settings == essay.default_settings and copy.processing_rules == essay.processing_rules
    assert not copy.is_public and not copy.is_prebuilt
    editing = client.get(f"/templates/{copy.pk}")
    assert "form" in editing.context and "Save template" in editing.content.decode()


def test_a_viewer_sees_the_template_read_only_cannot_save_it_and_can_copy_it(
    client, owner, colleague, template
):
    share(template, colleague, Level.VIEW)
    client.force_login(colleague)
    data = {**editor(client, "/templates/new"), "name": "Taken over", "op": "save"}

    shown = client.get(f"/templates/{template.pk}")
    refused = client.post(f"/templates/{template.pk}", data)
    copied = client.post(f"/templates/{template.pk}/copy")

    assert "View only" in shown.content.decode() and "form" not in shown.context
    assert refused.status_code == 403 and "ask its owner for change access" in refused.content.decode()
    template.refresh_from_db()
    assert template.name == "Lab reports"
    assert copied.status_code == 302 and BatchTemplate.objects.filter(owner=colleague).count() == 1


def test_a_public_template_of_another_teacher_is_read_only_to_everyone_else(
    client, owner, stranger, template
):
    template.is_public = True
    template.save()
    client.force_login(stranger)

    shown = client.get(f"/templates/{template.pk}")
    refused = client.post(f"/templates/{template.pk}", {"op": "save"})

    assert shown.status_code == 200 and "but not change it" in shown.content.decode()
    assert refused.status_code == 403


def test_a_change_holder_edits_the_template(client, owner, colleague, template):
    share(template, colleague, Level.CHANGE)
    client.force_login(colleague)
    data = {
        **editor(client, f"/templates/{template.pk}"),
        "instructions": "Look at the error bars.",
        "op": "save",
    }

    response = client.post(f"/templates/{template.pk}", data)

    assert response.status_code == 302
    template.refresh_from_db()
    assert template.default_settings["instructions"] == "Look at the error bars."
    assert template.owner == owner


def test_a_stranger_gets_404_on_every_page_of_a_private_template(client, stranger, template):
    client.force_login(stranger)

    for response in (
        client.get(f"/templates/{template.pk}"),
        client.post(f"/templates/{template.pk}", {"op": "save"}),
        client.post(f"/templates/{template.pk}/copy"),
        client.get(f"/templates/{template.pk}/delete"),
        client.post(f"/templates/{template.pk}/delete"),
    ):
        assert response.status_code == 404
    assert BatchTemplate.objects.filter(pk=template.pk).exists()
    assert not BatchTemplate.objects.filter(owner=stranger).exists()


def test_signed_out_visitors_are_sent_to_sign_in(client, template):
    response = client.get("/templates")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- deleting ---------------------------------------------------------------------------------------


def test_the_owner_deletes_a_template_after_confirming(client, owner, template):
    client.force_login(owner)

    asked = client.get(f"/templates/{template.pk}/delete")
    deleted = client.post(f"/templates/{template.pk}/delete")

    assert asked.status_code == 200 and "Delete “<bdi>Lab reports</bdi>”?" in asked.content.decode()
    assert deleted["Location"] == "/templates"
    assert not BatchTemplate.objects.filter(pk=template.pk).exists()


def test_a_change_holder_cannot_delete_and_a_template_in_use_is_kept_with_409(
    client, owner, colleague, template
):
    share(template, colleague, Level.CHANGE)
    make_batch(owner, template, jobs=1)
    client.force_login(colleague)
    assert client.post(f"/templates/{template.pk}/delete").status_code == 403
    client.force_login(owner)

    response = client.post(f"/templates/{template.pk}/delete")

    assert response.status_code == 409 and "1 batch(es) that are not archived" in response.content.decode()
    assert BatchTemplate.objects.filter(pk=template.pk).exists()


def test_a_prebuilt_template_cannot_be_deleted_even_by_a_superuser(client, superuser):
    essay = prebuilt()
    client.force_login(superuser)

    response = client.post(f"/templates/{essay.pk}/delete")

    assert response.status_code == 409
    assert BatchTemplate.objects.filter(pk=essay.pk).exists()


# --- save as template -------------------------------------------------------------------------------


def test_save_as_template_makes_the_users_own_template_from_the_batchs_settings(client, owner):
    essay = prebuilt()
    batch = make_batch(
        owner,
        essay,
        jobs=1,
        name="Week 3",
        settings={"instructions": "Be kind.", "temperature": 0.4, "processing": {"concurrency": 3}},
    )
    client.force_login(owner)

    response = client.post(f"/batches/{batch.pk}/save-as-template")

    made = BatchTemplate.objects.get(owner=owner)
    assert response["Location"] == f"/templates/{made.pk}"
    assert made.name == "Week 3 (template)" and made.category == essay.category
    assert made.default_settings["rubric"] == batch.validated_settings().rubric.model_dump(mode="json")
    assert made.default_settings["instructions"] == "Be kind."
    assert (made.default_settings["provider"], made.default_settings["model"]) == ("builtin", "builtin-v1")
    assert made.default_settings["temperature"] == 0.4
    assert made.processing_rules["concurrency"] == 3
    assert made.processing_rules["auto_start"] == essay.processing_rules["auto_start"]
    assert "form" in client.get(response["Location"]).context


def test_a_viewer_of_a_batch_may_save_it_as_their_own_template(client, owner, colleague):
    batch = make_batch(owner, prebuilt(), jobs=1)
    set_status(batch, "completed", "completed")
    share(batch, colleague, Level.VIEW)
    client.force_login(colleague)

    page = client.get(f"/batches/{batch.pk}").content.decode()
    response = client.post(f"/batches/{batch.pk}/save-as-template")

    assert "Save as template" in page
    assert response.status_code == 302 and BatchTemplate.objects.get(owner=colleague)


def test_a_stranger_cannot_save_a_batch_they_cannot_see_as_a_template(client, owner, stranger):
    batch = make_batch(owner, prebuilt(), jobs=1)
    client.force_login(stranger)

    response = client.post(f"/batches/{batch.pk}/save-as-template")

    assert response.status_code == 404
    assert not BatchTemplate.objects.filter(owner=stranger).exists()
    assert JobBatch.objects.filter(pk=batch.pk).exists()


def test_more_criteria_or_levels_than_the_schema_allows_are_refused_on_the_rubric_and_the_criterion(
    client, owner, template
):
    client.force_login(owner)
    shown = editor(client, f"/templates/{template.pk}")
    many_criteria = {**shown, "criteria_count": "21", "op": "save"}
    for index in range(3, 21):
        many_criteria.update({f"criterion-{index}-name": f"Extra {index}", f"criterion-{index}-points": "1"})
    many_levels = {**shown, "criterion-1-levels": "11", "op": "save"}
    for level in range(11):
        many_levels.update(
            {f"criterion-1-level-{level}-label": f"L{level}", f"criterion-1-level-{level}-points": "1"}
        )

    criteria_refused = client.post(f"/templates/{template.pk}", many_criteria)
    levels_refused = client.post(f"/templates/{template.pk}", many_levels)

    assert criteria_refused.status_code == levels_refused.status_code == 400
    assert "at most 20 items" in errors_on(criteria_refused, "criteria_count")[0]
    assert "at most 10 items" in errors_on(levels_refused, "criterion-1-levels")[0]
    assert 'id="id_criterion-1-levels_error"' in levels_refused.content.decode()


def test_save_as_template_works_on_a_batch_whose_template_was_deleted_since_it_was_graded(client, owner):
    # Once every batch using it is archived, its owner may delete the template: the batch's jobs
    # still hold the settings they were graded with, and those make the new template.
    mine = prebuilt().copy_for(owner, name="Lab reports")
    batch = make_batch(owner, mine, jobs=1, name="Spring labs", settings={"instructions": "Be kind."})
    batch.start_batch()
    rubric = batch.validated_settings().rubric.model_dump(mode="json")
    set_status(batch, "archived", "completed")
    mine.delete()
    client.force_login(owner)

    response = client.post(f"/batches/{batch.pk}/save-as-template")

    made = BatchTemplate.objects.get(owner=owner)
    assert response["Location"] == f"/templates/{made.pk}"
    assert made.name == "Spring labs (template)"
    assert made.default_settings["rubric"] == rubric
    assert made.default_settings["instructions"] == "Be kind."


def test_a_copy_or_a_saved_template_of_a_long_name_is_still_named_as_such(client, owner):
    long_name = "Термин " * 28 + "مق 🎓"  # 200 characters: Cyrillic, Arabic and an emoji
    assert len(long_name) == 200
    original = prebuilt().copy_for(owner, name=long_name)
    batch = make_batch(owner, original, jobs=1, name=long_name)
    client.force_login(owner)

    client.post(f"/templates/{original.pk}/copy")
    client.post(f"/batches/{batch.pk}/save-as-template")

    copy, saved = BatchTemplate.objects.filter(owner=owner).exclude(pk=original.pk).order_by("pk")
    assert copy.name.endswith("… (copy)") and copy.name.startswith("Термин Термин")
    assert saved.name.endswith("… (template)")
    assert len(copy.name) == len(saved.name) == 200


def test_a_save_over_changes_someone_saved_since_the_editor_opened_is_refused_then_allowed_on_purpose(
    client, owner, colleague, template
):
    share(template, colleague, Level.CHANGE)
    client.force_login(owner)
    mine = {**editor(client, f"/templates/{template.pk}"), "instructions": "Olivia's wording.", "op": "save"}
    client.force_login(colleague)
    theirs = {**editor(client, f"/templates/{template.pk}"), "instructions": "Colin's wording.", "op": "save"}
    assert client.post(f"/templates/{template.pk}", theirs).status_code == 302
    client.force_login(owner)

    refused = client.post(f"/templates/{template.pk}", mine)

    template.refresh_from_db()
    assert refused.status_code == 409
    assert template.default_settings["instructions"] == "Colin's wording."
    page = refused.content.decode()
    assert "Someone saved this template since you opened it" in page
    assert "Olivia&#x27;s wording." in page  # what she typed is kept

    again = client.post(f"/templates/{template.pk}", posted(refused.context["form"]) | {"op": "save"})

    template.refresh_from_db()
    assert again.status_code == 302
    assert template.default_settings["instructions"] == "Olivia's wording."
