"""Override.version: counts an override's changes, so that an approval can name the one its approver saw."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scaling", "0014_service_region_stored"),
    ]

    operations = [
        migrations.AddField(
            model_name="override",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
    ]
