import pytest

from grading.merge import deep_merge
from grading.schema import SettingsError, validate_settings
from tests.conftest import make_batch, prebuilt

pytestmark = pytest.mark.django_db


def test_effective_settings_layer_template_then_batch_then_job(owner):
    batch = make_batch(
        owner,
        jobs=0,
        settings={"temperature": 0.5, "model": "batch-model", "processing": {"stagger_ms": 40}},
    )

    effective = batch.effective_settings({"temperature": 0.9})

    assert effective["temperature"] == 0.9  # the job wins
    assert effective["model"] == "batch-model"  # the batch beats the template
    assert effective["provider"] == "builtin"  # the template fills what no one overrides
    assert effective["processing"]["stagger_ms"] == 40
    # Nested settings merge key by key: the template's other rules survive.
    assert effective["processing"]["concurrency"] == prebuilt().processing_rules["concurrency"]


def test_a_list_in_a_later_layer_replaces_the_earlier_list():
    merged = deep_merge({"models": ["a", "b"], "x": {"y": 1}}, {"models": ["c"]})

    assert merged == {"models": ["c"], "x": {"y": 1}}


def test_merging_never_changes_the_layers():
    template = {"processing": {"concurrency": 4}}

    deep_merge(template, {"processing": {"concurrency": 9}})

    assert template == {"processing": {"concurrency": 4}}


def _errors(owner, **overrides) -> dict[str, list[str]]:
    batch = make_batch(owner, jobs=0)
    batch.settings = overrides
    with pytest.raises(SettingsError) as invalid:
        batch.validated_settings()
    return invalid.value.errors


def test_an_unknown_provider_is_refused_by_name(owner):
    errors = _errors(owner, provider="magic")

    assert "unknown provider 'magic'" in errors["provider"][0]


@pytest.mark.parametrize("temperature", [-0.1, 2.5])
def test_a_temperature_out_of_range_is_refused(owner, temperature):
    assert "temperature" in _errors(owner, temperature=temperature)


def test_a_rubric_criterion_without_points_is_refused():
    settings = prebuilt().settings_layer()
    del settings["rubric"]["criteria"][1]["points"]

    with pytest.raises(SettingsError) as invalid:
        validate_settings(settings)

    assert invalid.value.errors == {"rubric.criteria.1.points": ["This setting is required."]}


def test_max_attempts_below_one_is_refused(owner):
    errors = _errors(owner, processing={"max_attempts": 0})

    assert list(errors) == ["processing.max_attempts"]


def test_an_unknown_setting_is_refused(owner):
    assert _errors(owner, temprature=0.2) == {"temprature": ["Unknown setting."]}


def test_settings_without_a_rubric_are_refused():
    with pytest.raises(SettingsError) as invalid:
        validate_settings({"provider": "builtin"})

    assert "rubric" in invalid.value.errors


def test_creating_a_batch_with_bad_settings_saves_nothing(owner, essay_template):
    from batches.models import JobBatch

    with pytest.raises(SettingsError):
        JobBatch.objects.create_from_template(
            owner=owner, name="Bad", template=essay_template, settings={"temperature": 9}
        )

    assert not JobBatch.objects.filter(name="Bad").exists()
    essay_template.refresh_from_db()
    assert essay_template.usage_count == 0
