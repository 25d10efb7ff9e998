"""Override.approval_needed_because: why an override waited for a second person, as decided when asked for."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scaling", "0015_override_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="override",
            name="approval_needed_because",
            field=models.CharField(blank=True, max_length=500),
        ),
    ]
