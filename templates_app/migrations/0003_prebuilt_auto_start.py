"""Grading starts by itself for the pre-built essay and report templates (see templates_app/prebuilt.py).

Only the processing rule changes, in the rows installed by 0002; nothing else
a deployment may have edited is touched. No schema change.
"""

from django.db import migrations

AUTO_START = {"academic-essay": True, "business-report": True, "research-paper": False}


def _set(apps, values: dict[str, bool]) -> None:
    template_model = apps.get_model("templates_app", "BatchTemplate")
    for template in template_model.objects.filter(slug__in=values):
        rules = dict(template.processing_rules or {})
        rules["auto_start"] = values[template.slug]
        template.processing_rules = rules
        template.save(update_fields=["processing_rules"])


def turn_on(apps, schema_editor):
    _set(apps, AUTO_START)


def turn_off(apps, schema_editor):
    _set(apps, {slug: False for slug in AUTO_START})


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0002_prebuilt_templates")]

    operations = [migrations.RunPython(turn_on, turn_off)]
