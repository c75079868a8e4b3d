"""Batches made before economy delivery keep grading in real time.

New batches take the schema's default delivery, `auto` (grading.economy.decide); the
batches that exist already say `realtime` in their own settings, so starting, resuming or
retrying one later grades it as before.
"""

from django.db import migrations


def keep_realtime(apps, schema_editor):
    JobBatch = apps.get_model("batches", "JobBatch")
    changed = []
    for batch in JobBatch.objects.only("id", "settings").iterator(chunk_size=500):
        settings = batch.settings if isinstance(batch.settings, dict) else {}
        processing = settings.get("processing")
        if isinstance(processing, dict) and "delivery" in processing:
            continue
        settings["processing"] = {**(processing if isinstance(processing, dict) else {}), "delivery": "realtime"}
        batch.settings = settings
        changed.append(batch)
    JobBatch.objects.bulk_update(changed, ["settings"], batch_size=500)


def forget(apps, schema_editor):
    JobBatch = apps.get_model("batches", "JobBatch")
    changed = []
    for batch in JobBatch.objects.only("id", "settings").iterator(chunk_size=500):
        processing = (batch.settings or {}).get("processing")
        if isinstance(processing, dict) and processing.get("delivery") == "realtime":
            processing.pop("delivery")
            if not processing:
                batch.settings.pop("processing")
            changed.append(batch)
    JobBatch.objects.bulk_update(changed, ["settings"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0008_assignment_rule_sharing"),
        ("grading", "0010_job_delivery_and_provider_batches"),
    ]

    operations = [migrations.RunPython(keep_realtime, forget)]
