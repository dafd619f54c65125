"""Store scoping: the one place that says which stores a user may see, and with which role."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case, QuerySet, Value, When
from django.http import Http404

from portal.choices import Role
from portal.models import ApiKey, Membership, Store

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


# --- store management (admins) ---------------------------------------------------------------------


def store_ids_with_roles(user: AbstractBaseUser | AnonymousUser, roles: Iterable[str]) -> list[int]:
    """The stores where the user's membership has one of `roles` (superuser or not)."""
    wanted = set(roles)
    return [store_id for store_id, role in store_roles_for_user(user).items() if role in wanted]


def store_admin_ids_for_user(user: AbstractBaseUser | AnonymousUser) -> list[int]:
    """The stores the user is an admin of (their membership says so; superuser or not)."""
    return store_ids_with_roles(user, (Role.ADMIN,))


def user_manages_stores(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user may manage at least one store: an admin membership, or a superuser."""
    return user.is_authenticated and (user.is_superuser or bool(store_admin_ids_for_user(user)))


def store_rows_for_user(user: AbstractBaseUser | AnonymousUser) -> list[tuple[Store, str | None, bool]]:
    """(store, the user's role or None, whether they may manage it) for the stores the user belongs to;
    every store for a superuser, who manages them all. Ordered by name."""
    roles = store_roles_for_user(user)
    stores = Store.objects.order_by("name", "code")
    if not user.is_superuser:
        stores = stores.filter(pk__in=list(roles))
    return [
        (store, roles.get(store.pk), user.is_superuser or roles.get(store.pk) == Role.ADMIN)
        for store in stores
    ]


def store_get_for_admin(user: AbstractBaseUser | AnonymousUser, code: str) -> Store:
    """The store with this code if the user may manage it (admin membership, or superuser); Http404
    otherwise, so another store's management pages look exactly like a store that does not exist."""
    stores = Store.objects.all()
    if not user.is_superuser:
        stores = stores.filter(pk__in=store_admin_ids_for_user(user))
    try:
        return stores.get(code=code)
    except Store.DoesNotExist:
        raise Http404("No such store.") from None


def store_members(store: Store) -> QuerySet[Membership]:
    """The store's memberships with their users, admins first, then by username."""
    role_order = Case(
        When(role=Role.ADMIN, then=Value(0)), When(role=Role.SUPERVISOR, then=Value(1)), default=Value(2)
    )
    return (
        Membership.objects.filter(store=store)
        .select_related("user")
        .order_by(role_order, "user__username", "pk")
    )


def store_membership_get(store: Store, pk: int) -> Membership:
    """One membership of this store; Http404 for a membership of any other store."""
    try:
        return Membership.objects.select_related("user", "store").get(store=store, pk=pk)
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None


def user_is_store_admin(user: AbstractBaseUser | AnonymousUser, store: Store) -> bool:
    """Whether the user may manage the store now, read from the database (not the per-request memo), for
    the moment right after their own role changed."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or Membership.objects.filter(store=store, user=user, role=Role.ADMIN).exists()


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_for_secret(secret: str) -> ApiKey | None:
    """The active key with this secret, with its store; None for an unknown or revoked one."""
    return (
        ApiKey.objects.filter(key_hash=api_key_hash(secret), revoked_at__isnull=True)
        .select_related("store")
        .first()
    )


def api_keys_for_store(store: Store) -> QuerySet[ApiKey]:
    """The store's keys, newest first, revoked ones too (they stay as the record of who called)."""
    return ApiKey.objects.filter(store=store).select_related("created_by", "revoked_by")


def api_key_get_for_store(store: Store, pk: int) -> ApiKey:
    key = ApiKey.objects.filter(store=store, pk=pk).first()
    if key is None:
        raise Http404("No such API key.")
    return key
