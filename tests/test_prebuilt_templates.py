import pytest
from django.core.management import call_command

from grading.schema import validate_settings
from templates_app.models import BatchTemplate
from templates_app.prebuilt import install

pytestmark = pytest.mark.django_db

SLUGS = {"academic-essay": "academic", "business-report": "business", "research-paper": "research"}


def test_the_three_templates_exist_after_migrate():
    templates = {t.slug: t for t in BatchTemplate.objects.filter(slug__in=SLUGS)}
    assert {slug: t.category for slug, t in templates.items()} == SLUGS
    assert all(t.is_public for t in templates.values())


@pytest.mark.parametrize("slug", SLUGS)
def test_each_template_has_a_valid_rubric_of_four_to_six_criteria_with_levels(slug):
    template = BatchTemplate.objects.get(slug=slug)
    settings = validate_settings(template.settings_layer())
    assert settings.provider == "builtin"
    assert 4 <= len(settings.rubric.criteria) <= 6
    for criterion in settings.rubric.criteria:
        assert criterion.points > 0
        assert len(criterion.levels) >= 3
        assert all(level.descriptor for level in criterion.levels)
    assert settings.processing.max_attempts >= 1


def test_reinstalling_the_templates_does_not_duplicate_them():
    install(BatchTemplate)
    install(BatchTemplate)
    assert BatchTemplate.objects.filter(slug__in=SLUGS).count() == 3


@pytest.mark.django_db(transaction=True)
def test_rerunning_the_data_migration_does_not_duplicate_them():
    try:
        call_command("migrate", "templates_app", "0001", verbosity=0)
    finally:
        # Every app forward again: going back also unapplied the other apps' migrations that
        # depend on the templates', and later tests share this database.
        call_command("migrate", verbosity=0)
    assert BatchTemplate.objects.filter(slug__in=SLUGS).count() == 3
