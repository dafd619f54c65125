"""The demo shop (`manage.py seed_demo`, `make run`): two beauty stores the day after a big livestream, with
four weeks of history. Part of portal's roof: it uses every app (tracking's push path, cases' engine, workflow,
compensation, appeals, reports), and nothing below the roof imports it.

- `plan`: `demo_plan` decides every row from a seed and a point in time, without touching the database.
- `seed`: `demo_seed` writes that plan idempotently, through the real push path and the exception engine.

The names callers use (the seed command, the tests, the browser tour) are re-exported here.
"""

from portal.demo.plan import (
    DAMAGE_CLUSTER,
    DEFAULT_ORDERS,
    DEFAULT_SEED,
    DEMO_USERS,
    FLASH_DEAL_SKU,
    HISTORY_DAYS,
    HISTORY_PUSH_BATCH,
    LIVE_TITLE,
    PAST_LIVE_TITLE,
    SETTLED_AFTER,
    SHOPEE_TH,
    STORES,
    TTS_MY,
    WORSE_DAYS,
    WORSE_LANE,
    DemoPlan,
    demo_plan,
)
from portal.demo.seed import SeedReport, demo_seed

__all__ = [
    "DAMAGE_CLUSTER",
    "DEFAULT_ORDERS",
    "DEFAULT_SEED",
    "DEMO_USERS",
    "FLASH_DEAL_SKU",
    "HISTORY_DAYS",
    "HISTORY_PUSH_BATCH",
    "LIVE_TITLE",
    "PAST_LIVE_TITLE",
    "SETTLED_AFTER",
    "SHOPEE_TH",
    "STORES",
    "TTS_MY",
    "WORSE_DAYS",
    "WORSE_LANE",
    "DemoPlan",
    "SeedReport",
    "demo_plan",
    "demo_seed",
]
