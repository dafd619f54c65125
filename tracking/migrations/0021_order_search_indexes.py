"""The queue's search finds orders by the buyer's phone and name within the user's stores (issue 28).

The phone: a btree index of the store's non-empty phones, declared on the model. The name: a trigram GIN
index on upper(buyer_name), which serves Django's `icontains` and `iexact` on PostgreSQL
(`UPPER("buyer_name"::text) LIKE UPPER(%s)`); made here, not declared on the model, because SQLite cannot
build it (SQLite keeps matching names with LIKE over the stores' orders). Its statistics target is raised
so that the planner's estimate of how many names match a part (from the sampled names) is close enough to
choose between walking the queue and sorting the few cases of a rare name.

Also on PostgreSQL only: statistics on upper(carrier), the queue's carrier filter (`iexact`); without them
the planner takes any carrier for a rare one (0.5 % of the parcels) and reads the parcels of every store by
carrier instead of walking the store's queue. Statistics cost nothing on writes.

The reverse drops the index and the statistics, and leaves the pg_trgm extension, which other schemas of
the database may use.
"""

from django.db import migrations, models

NAME_INDEX = "order_buyer_name_trgm_idx"
CARRIER_STATS = "shipment_carrier_upper_stats"


def name_index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {NAME_INDEX} ON tracking_order USING gin (upper(buyer_name) gin_trgm_ops)"
    )
    schema_editor.execute(f"ALTER INDEX {NAME_INDEX} ALTER COLUMN 1 SET STATISTICS 1000")
    schema_editor.execute(f"CREATE STATISTICS IF NOT EXISTS {CARRIER_STATS} ON (upper(carrier)) FROM tracking_shipment")
    # Now, not at the next autoanalyze (which follows row changes, not new indexes): until then the planner
    # has no figures for the name or the carrier and guesses.
    schema_editor.execute("ANALYZE tracking_order")
    schema_editor.execute("ANALYZE tracking_shipment")


def name_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP STATISTICS IF EXISTS {CARRIER_STATS}")
    schema_editor.execute(f"DROP INDEX IF EXISTS {NAME_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_reporting"),
        ("tracking", "0020_order_unshipped_ship_by_idx"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("buyer_phone", ""), _negated=True),
                fields=["store", "buyer_phone"],
                name="order_store_phone_idx",
            ),
        ),
        migrations.RunPython(name_index_create, name_index_drop),
    ]
