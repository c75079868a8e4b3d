from django.db import migrations


def install_prebuilt(apps, schema_editor):
    from templates_app.prebuilt import install

    install(apps.get_model("templates_app", "BatchTemplate"))


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0001_initial")]

    operations = [migrations.RunPython(install_prebuilt, migrations.RunPython.noop)]
