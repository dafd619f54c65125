from django.db import migrations, models


def forget_marks(apps, schema_editor):
    # Marks are transient (a store-day to rebuild): the next refresh finds the changes again.
    apps.get_model("cases", "RollupDirty").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0011_health_thresholds"),
    ]

    operations = [
        migrations.RunPython(forget_marks, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="rollupdirty", name="rollup_dirty_once"),
        migrations.AddField(
            model_name="rollupdirty",
            name="scope",
            field=models.CharField(
                choices=[
                    ("parcels", "parcels"),
                    ("cases", "cases"),
                    ("money", "money"),
                    ("orders", "orders"),
                    ("dispatch", "first scans"),
                ],
                default="parcels",
                max_length=10,
                verbose_name="tables",
            ),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="rollupdirty",
            constraint=models.UniqueConstraint(fields=("store", "day", "scope"), name="rollup_dirty_once"),
        ),
    ]
