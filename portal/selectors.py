"""Store scoping: the one place that says which stores a user may see, and with which role."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from portal.choices import Role
from portal.models import Membership, Store

_CACHE_ATTR = "_afterdesk_store_roles"


def store_roles_for_user(user: AbstractBaseUser | AnonymousUser) -> dict[int, str]:
    """{store_id: role} for the user's memberships; memoized on the user object for the request."""
    if not user.is_authenticated:
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("store_id", "role"))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def store_ids_for_user(user: AbstractBaseUser | AnonymousUser) -> list[int]:
    return list(store_roles_for_user(user))


def stores_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Store]:
    return Store.objects.filter(pk__in=store_ids_for_user(user)).order_by("name")


def user_has_role(
    user: AbstractBaseUser | AnonymousUser, store_id: int, roles: Iterable[str] = tuple(Role)
) -> bool:
    return store_roles_for_user(user).get(store_id) in set(roles)
