from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scaling", "0006_game_tbd"),
    ]

    operations = [
        migrations.AddField(
            model_name="service",
            name="mode_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
