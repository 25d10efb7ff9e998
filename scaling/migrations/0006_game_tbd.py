from django.db import migrations, models


def mark_tbd(apps, schema_editor):
    """Games imported before the flag whose teams are placeholders (" ()") are to be decided."""
    Game = apps.get_model("scaling", "Game")
    for game in Game.objects.all().only("pk", "away_team", "home_team"):
        teams = [t.replace("(", "").replace(")", "").strip().upper() for t in (game.away_team, game.home_team)]
        if all(t in ("", "TBD") for t in teams):
            Game.objects.filter(pk=game.pk).update(tbd=True, away_team="TBD", home_team="TBD")


class Migration(migrations.Migration):
    dependencies = [
        ("scaling", "0005_audit_incremental_verify"),
    ]

    operations = [
        migrations.AddField(
            model_name="game",
            name="tbd",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_tbd, migrations.RunPython.noop),
    ]
