from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Platform(models.TextChoices):
    TIKTOK_SHOP = "tiktok_shop", _("TikTok Shop")  # ship-by and late-dispatch rate per TikTok Shop SLA
    SHOPEE = "shopee", _("Shopee")  # late-shipment and non-fulfilment rates
    LAZADA = "lazada", _("Lazada")
    DOUYIN = "douyin", _("Douyin")
    KUAISHOU = "kuaishou", _("Kuaishou")
    WECHAT_CHANNELS = "wechat_channels", _("WeChat Channels")
    OWN_SITE = "own_site", _("Own site")  # the seller's own storefront, no platform penalties


class Role(models.TextChoices):
    AGENT = "agent", _("Agent")  # works cases in their stores
    SUPERVISOR = "supervisor", _("Supervisor")  # also assigns, manages templates and policy, sees every queue
    ADMIN = "admin", _("Admin")  # also manages the store and its members
