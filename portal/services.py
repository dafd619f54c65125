"""Store administration: a store's admins (and superusers) change the store's settings and its members.

The invariant every function here keeps: a store always has at least one admin. The check and the write
happen under a lock on the store's memberships, so two admins demoting or removing each other at the same
moment cannot leave the store with none.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from portal.choices import Role
from portal.models import ApiKey, ApiScope, Membership, Store
from portal.selectors import api_key_hash

log = logging.getLogger(__name__)
# The cases app's own service, by dotted path: portal is the base every app imports, never the reverse.
RELEASE_MEMBER_CASES = "cases.workflow.cases_release_from_member"

STORE_EDITABLE_FIELDS = ("name", "timezone", "default_language", "region", "currency", "ship_from")


class MembershipError(ValidationError):
    """A refused member change (unknown user, already a member, the last admin...), with a message fit to
    show the user. Nothing was written."""


def _admin_require(actor: AbstractBaseUser, store: Store, roles: Mapping[int, str] | None = None) -> None:
    """PermissionDenied unless the actor is a superuser or an admin of the store. `roles` ({user_id: role},
    read under lock) is the state to judge by; without it the database is asked."""
    if actor.is_superuser:
        return
    if roles is not None:
        is_admin = roles.get(actor.pk) == Role.ADMIN
    else:
        is_admin = Membership.objects.filter(store=store, user=actor, role=Role.ADMIN).exists()
    if not is_admin:
        raise PermissionDenied(_("Only the store's admins manage the store and its members."))


def _role_require(role: str) -> Role:
    if role not in Role.values:
        raise MembershipError(_("“%(role)s” is not a role.") % {"role": role})
    return Role(role)


def _locked_roles(store: Store) -> dict[int, str]:
    """{user_id: role} for every member of the store, each membership row locked until the transaction
    ends. Locked in primary-key order, so two admins acting at once queue up instead of deadlocking; the
    second one then reads the first one's committed change (PostgreSQL re-reads locked rows)."""
    rows = Membership.objects.select_for_update().filter(store=store).order_by("pk")
    return dict(rows.values_list("user_id", "role"))


def _user_find(username_or_email: str) -> AbstractBaseUser:
    """The one active user whose username (else email) matches, ignoring case. MembershipError when there
    is none, when it is ambiguous, or when the account is deactivated."""
    value = username_or_email.strip()
    if not value:
        raise MembershipError(_("Enter a username or an email address."))
    users = get_user_model().objects.order_by("pk")
    by_username = list(users.filter(username__iexact=value)[:10])
    exact = [user for user in by_username if user.get_username() == value]
    if len(exact) == 1:
        candidates = exact
    elif by_username:
        candidates = by_username
    else:
        candidates = list(users.filter(email__iexact=value)[:10])
    if not candidates:
        raise MembershipError(_("No user has the username or email “%(value)s”.") % {"value": value})
    if len(candidates) > 1:
        raise MembershipError(
            _("Several users match “%(value)s”; add the person by their exact username.") % {"value": value}
        )
    user = candidates[0]
    if not user.is_active:
        raise MembershipError(
            _("The account “%(username)s” is deactivated.") % {"username": user.get_username()}
        )
    return user


def _last_admin_refuse(roles: Mapping[int, str], membership: Membership, *, message: str) -> None:
    others = [
        user_id for user_id, role in roles.items() if role == Role.ADMIN and user_id != membership.user_id
    ]
    if roles.get(membership.user_id) == Role.ADMIN and not others:
        raise MembershipError(message)


def member_add(*, store: Store, actor: AbstractBaseUser, username_or_email: str, role: str) -> Membership:
    """Give an existing user a role in the store. The user is found by username, else by email, ignoring
    case. Raises PermissionDenied unless the actor is an admin of the store or a superuser; MembershipError
    (nothing written) for an unknown, ambiguous or deactivated user, a bad role, or someone who is already a
    member (also when a concurrent request added them first: the database constraint decides)."""
    _admin_require(actor, store)
    role = _role_require(role)
    user = _user_find(username_or_email)
    already = _("%(username)s is already a member of %(store)s.") % {
        "username": user.get_username(),
        "store": store.name,
    }
    if Membership.objects.filter(store=store, user=user).exists():
        raise MembershipError(already)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(store=store, user=user, role=role)
    except IntegrityError:
        raise MembershipError(already) from None
    log.info("store %s: %s added %s as %s", store.code, actor.get_username(), user.get_username(), role)
    return membership


def _locked_for_change(store: Store, actor: AbstractBaseUser, membership: Membership) -> dict[int, str]:
    """The store's {user id: role} under lock, once the actor may change members and the member is still one."""
    roles = _locked_roles(store)
    _admin_require(actor, store, roles)
    if membership.user_id not in roles:
        raise MembershipError(_("This person is no longer a member of the store."))
    return roles


def member_set_role(*, membership: Membership, actor: AbstractBaseUser, role: str) -> Membership:
    """Change a member's role. Refuses (MembershipError, nothing written) to demote the store's last admin;
    PermissionDenied unless the actor is an admin of the store or a superuser. Locks all the store's
    memberships while it checks and writes. Setting the role a member already has changes nothing."""
    role = _role_require(role)
    store = membership.store
    with transaction.atomic():
        roles = _locked_for_change(store, actor, membership)
        membership.role = roles[membership.user_id]
        if membership.role == role:
            return membership
        if role != Role.ADMIN:
            _last_admin_refuse(
                roles,
                membership,
                message=_("%(username)s is the store's only admin; make someone else an admin first.")
                % {"username": membership.user.get_username()},
            )
        old_role = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
    log.info(
        "store %s: %s changed %s from %s to %s",
        store.code, actor.get_username(), membership.user.get_username(), old_role, role,
    )  # fmt: skip
    return membership


def member_remove(*, membership: Membership, actor: AbstractBaseUser) -> None:
    """Take a member out of the store. Refuses (MembershipError, nothing written) to remove the store's last
    admin; PermissionDenied unless the actor is an admin of the store or a superuser. Locks all the store's
    memberships while it checks and deletes. The member's open cases in the store go back to Unassigned, in
    the same transaction."""
    store = membership.store
    with transaction.atomic():
        roles = _locked_for_change(store, actor, membership)
        _last_admin_refuse(
            roles,
            membership,
            message=_(
                "%(username)s is the store's only admin and cannot be removed; make someone else an admin first."
            )
            % {"username": membership.user.get_username()},
        )
        Membership.objects.filter(pk=membership.pk).delete()
        released = import_string(RELEASE_MEMBER_CASES)(
            store_id=store.pk, user_id=membership.user_id, actor=actor
        )
    log.info(
        "store %s: %s removed %s (%d open cases back to Unassigned)",
        store.code, actor.get_username(), membership.user.get_username(), released,
    )  # fmt: skip


def store_update(*, store: Store, actor: AbstractBaseUser, data: Mapping[str, Any]) -> Store:
    """Change the store's settings from `data`: name, timezone, default_language, region, currency (region
    and currency are upper-cased). Any other key, such as code or platform, is ignored: those are fixed.
    Raises PermissionDenied unless the actor is an admin of the store or a superuser, ValidationError by
    field (nothing written) for a bad value such as an unknown time zone. Locks the store row."""
    _admin_require(actor, store)
    with transaction.atomic():
        row = Store.objects.select_for_update().get(pk=store.pk)
        for name in STORE_EDITABLE_FIELDS:
            if name not in data:
                continue
            value = (data[name] or "").strip()
            if name in ("region", "currency"):
                value = value.upper()
            setattr(row, name, value)
        row.full_clean()
        row.save(update_fields=[*STORE_EDITABLE_FIELDS])
    log.info("store %s: %s changed its settings", row.code, actor.get_username())
    return row


# --- API keys -------------------------------------------------------------------------------------

API_KEY_PREFIX = "afd_"
API_KEY_NAME_MAX = ApiKey._meta.get_field("name").max_length


def api_key_create(
    *, store: Store, name: str, read_only: bool = False, actor: AbstractBaseUser | None = None
) -> tuple[ApiKey, str]:
    """Make a key for the store and return it with its secret, which exists nowhere else after this: only
    its hash is stored. `actor` None is the command line (an operator); a user must be an admin of the
    store. A name is required (it is how the key is recognised in the list and on the timeline)."""
    if actor is not None:
        _admin_require(actor, store)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the key a name, e.g. the system that will use it.")})
    if len(name) > API_KEY_NAME_MAX:
        raise ValidationError(
            {"name": _("A name is at most %(max)d characters.") % {"max": API_KEY_NAME_MAX}}
        )
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    scopes = [ApiScope.READ] if read_only else [ApiScope.READ, ApiScope.WRITE]
    key = ApiKey.objects.create(
        store=store, name=name, prefix=secret[:12], key_hash=api_key_hash(secret), scopes=scopes,
        created_by=actor,
    )  # fmt: skip
    log.info(
        "store %s: API key %r made by %s", store.code, name, actor.get_username() if actor else "a command"
    )
    return key, secret


def api_key_revoke(*, key: ApiKey, actor: AbstractBaseUser | None = None) -> bool:
    """Revoke the key: from the next request on it is refused (401). Idempotent; returns whether it was
    active. The row stays, as the record of who called."""
    if actor is not None:
        _admin_require(actor, key.store)
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=actor
    )
    key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    if revoked:
        log.info("store %s: API key %r revoked", key.store.code, key.name)
    return bool(revoked)
