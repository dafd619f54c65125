from __future__ import annotations

import re
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import Membership, Store
from portal.services import MembershipError, member_add, member_remove, member_set_role, store_update
from tests.factories import make_membership, make_store, make_user


def _user(username: str, *, email: str = "", is_superuser: bool = False, is_active: bool = True):
    user = make_user(username)
    user.email, user.is_superuser, user.is_active = email, is_superuser, is_active
    user.save(update_fields=["email", "is_superuser", "is_active"])
    return user


def _member(store: Store, username: str, role: str = "agent", **fields) -> Membership:
    return make_membership(user=_user(username, **fields), store=store, role=role)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _roles(store: Store) -> dict[str, str]:
    return dict(Membership.objects.filter(store=store).values_list("user__username", "role"))


@pytest.fixture
def owner(store):
    return _member(store, "olive", "admin", email="olive@example.com").user


@pytest.fixture
def admin_client(owner):
    return _client(owner)


def _url(name: str, store: Store, membership: Membership | None = None) -> str:
    args = [store.code] if membership is None else [store.code, membership.pk]
    return reverse(f"stores:{name}", args=args)


HTMX = {"HX-Request": "true"}


# --- member_add -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_adds_a_user_by_username_ignoring_case(store, owner):
    lee = _user("lee")

    membership = member_add(store=store, actor=owner, username_or_email="  LEE ", role="supervisor")

    assert (membership.user, membership.store, membership.role) == (lee, store, "supervisor")


@pytest.mark.django_db
def test_an_admin_adds_a_user_by_email_ignoring_case(store, owner):
    lee = _user("lee", email="Lee@Example.com")

    membership = member_add(store=store, actor=owner, username_or_email="lee@example.COM", role="agent")

    assert membership.user == lee


@pytest.mark.django_db
def test_an_exact_username_wins_over_another_that_differs_only_in_case(store, owner):
    _user("Lee")
    lee = _user("lee")

    assert member_add(store=store, actor=owner, username_or_email="lee", role="agent").user == lee


@pytest.mark.django_db
def test_adding_an_unknown_user_is_refused_and_writes_nothing(store, owner):
    with pytest.raises(MembershipError, match="No user has the username or email “ghost”"):
        member_add(store=store, actor=owner, username_or_email="ghost", role="agent")

    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_adding_by_an_email_several_users_share_is_refused(store, owner):
    _user("lee", email="team@example.com")
    _user("kim", email="TEAM@example.com")

    with pytest.raises(MembershipError, match=re.escape("Several users match “team@example.com”")):
        member_add(store=store, actor=owner, username_or_email="team@example.com", role="agent")

    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_adding_someone_who_is_already_a_member_is_refused(store, owner):
    _member(store, "lee", "agent")

    with pytest.raises(MembershipError, match="lee is already a member of Test Shop"):
        member_add(store=store, actor=owner, username_or_email="lee", role="admin")

    assert _roles(store) == {"olive": "admin", "lee": "agent"}


@pytest.mark.django_db
def test_a_deactivated_account_or_an_unknown_role_is_refused(store, owner):
    _user("gone", is_active=False)
    _user("lee")

    with pytest.raises(MembershipError, match="deactivated"):
        member_add(store=store, actor=owner, username_or_email="gone", role="agent")
    with pytest.raises(MembershipError, match="is not a role"):
        member_add(store=store, actor=owner, username_or_email="lee", role="owner")

    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_only_an_admin_of_the_store_may_add_members(store, other_store, role):
    actor = _member(store, "sam", role).user
    foreign_admin = _member(other_store, "ola", "admin").user
    _user("lee")

    for someone in (actor, foreign_admin):
        with pytest.raises(PermissionDenied):
            member_add(store=store, actor=someone, username_or_email="lee", role="agent")

    assert _roles(store) == {"sam": role}


@pytest.mark.django_db
def test_a_superuser_manages_a_store_they_are_not_a_member_of(store):
    root = _user("root", is_superuser=True)
    _user("lee")

    membership = member_add(store=store, actor=root, username_or_email="lee", role="admin")
    member_set_role(membership=membership, actor=root, role="admin")

    assert _roles(store) == {"lee": "admin"}


# --- member_set_role / member_remove ---------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_changes_a_members_role(store, owner):
    lee = _member(store, "lee", "agent")

    member_set_role(membership=lee, actor=owner, role="supervisor")

    lee.refresh_from_db()
    assert lee.role == "supervisor"


@pytest.mark.django_db
def test_the_last_admin_cannot_be_demoted(store, owner):
    with pytest.raises(MembershipError, match="olive is the store's only admin"):
        member_set_role(membership=Membership.objects.get(user=owner), actor=owner, role="supervisor")

    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_an_admin_may_step_down_while_another_admin_remains(store, owner):
    _member(store, "ada", "admin")

    member_set_role(membership=Membership.objects.get(user=owner), actor=owner, role="agent")

    assert _roles(store) == {"olive": "agent", "ada": "admin"}


@pytest.mark.django_db
def test_the_last_admin_cannot_be_removed(store, owner):
    with pytest.raises(MembershipError, match="only admin and cannot be removed"):
        member_remove(membership=Membership.objects.get(user=owner), actor=owner)

    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_an_admin_removes_a_member_and_the_user_stays(store, owner):
    lee = _member(store, "lee", "supervisor")

    member_remove(membership=lee, actor=owner)

    assert _roles(store) == {"olive": "admin"}
    assert type(lee.user).objects.filter(username="lee").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_only_an_admin_may_change_or_remove_members(store, owner, role):
    actor = _member(store, "sam", role).user
    lee = _member(store, "lee", "agent")

    with pytest.raises(PermissionDenied):
        member_set_role(membership=lee, actor=actor, role="admin")
    with pytest.raises(PermissionDenied):
        member_set_role(membership=Membership.objects.get(user=actor), actor=actor, role="admin")
    with pytest.raises(PermissionDenied):
        member_remove(membership=lee, actor=actor)

    assert _roles(store) == {"olive": "admin", "sam": role, "lee": "agent"}


# --- store_update ---------------------------------------------------------------------------------


SETTINGS = {
    "name": "Renamed Shop",
    "timezone": "Asia/Bangkok",
    "default_language": "th",
    "region": "th",
    "currency": "thb",
    "ship_from": " Bangkok ",
}


@pytest.mark.django_db
def test_an_admin_updates_the_store_settings_but_not_its_code_or_platform(store, owner):
    store_update(store=store, actor=owner, data={**SETTINGS, "code": "hijack", "platform": "shopee"})

    store.refresh_from_db()
    assert (store.name, store.timezone, store.default_language, store.region, store.currency) == (
        "Renamed Shop", "Asia/Bangkok", "th", "TH", "THB",
    )  # fmt: skip
    assert (store.code, store.platform) == ("store-a", "tiktok_shop")
    assert store.ship_from == "Bangkok"  # the origin of the reports' routes


@pytest.mark.django_db
def test_a_bad_time_zone_is_refused_and_writes_nothing(store, owner):
    with pytest.raises(ValidationError) as refused:
        store_update(store=store, actor=owner, data={**SETTINGS, "timezone": "Mars/Olympus"})

    assert "timezone" in refused.value.message_dict
    store.refresh_from_db()
    assert (store.name, store.timezone) == ("Test Shop", "Asia/Kuala_Lumpur")


@pytest.mark.django_db
def test_a_supervisor_cannot_update_the_store(store):
    supervisor = _member(store, "sam", "supervisor").user

    with pytest.raises(PermissionDenied):
        store_update(store=store, actor=supervisor, data=SETTINGS)

    store.refresh_from_db()
    assert store.name == "Test Shop"


# --- the pages ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_store_list_shows_each_role_and_a_manage_link_only_where_the_user_is_admin(store, other_store):
    user = _user("mia")
    make_membership(user=user, store=store, role="admin")
    make_membership(user=user, store=other_store, role="agent")
    make_store(code="store-c", name="Not Mine")

    body = _client(user).get(reverse("stores:list")).content.decode()

    assert 'data-store-code="store-a"' in body and 'data-store-code="store-b"' in body
    assert 'data-store-code="store-c"' not in body
    assert _url("detail", store) in body
    assert _url("detail", other_store) not in body
    assert ">Admin</span>" in body and ">Agent</span>" in body


@pytest.mark.django_db
def test_the_nav_links_the_stores_for_admins_only(admin_client, agent_client):
    assert f'href="{reverse("stores:list")}"' in admin_client.get(reverse("cases:list")).content.decode()
    assert f'href="{reverse("stores:list")}"' not in agent_client.get(reverse("cases:list")).content.decode()


@pytest.mark.django_db
def test_the_manage_page_shows_the_settings_and_the_members(admin_client, store):
    lee = _member(store, "lee", "supervisor", email="lee@example.com")

    body = admin_client.get(_url("detail", store)).content.decode()

    assert 'name="timezone"' in body and 'value="Asia/Kuala_Lumpur"' in body
    assert f'data-member-id="{lee.pk}"' in body and "lee@example.com" in body
    assert _url("member_remove", store, lee) in body
    assert 'id="member-add"' in body


@pytest.mark.django_db
def test_an_admin_adds_a_member_with_a_plain_post(admin_client, store):
    _user("lee")

    response = admin_client.post(
        _url("member_add", store), {"username_or_email": "lee", "role": "supervisor"}, follow=True
    )

    assert response.redirect_chain == [(_url("detail", store), 302)]
    assert "Added lee as supervisor." in response.content.decode()
    assert _roles(store)["lee"] == "supervisor"


@pytest.mark.django_db
def test_an_admin_adds_a_member_in_place_with_htmx(admin_client, store):
    _user("lee")

    response = admin_client.post(
        _url("member_add", store), {"username_or_email": "lee", "role": "agent"}, headers=HTMX
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="store-members"' in body
    member = Membership.objects.get(store=store, user__username="lee")
    assert f'data-member-id="{member.pk}"' in body
    assert 'hx-swap-oob="true"' in body and "Added lee as agent." in body


@pytest.mark.django_db
def test_adding_an_unknown_user_shows_the_error_in_place_and_writes_nothing(admin_client, store):
    htmx = admin_client.post(
        _url("member_add", store), {"username_or_email": "ghost", "role": "agent"}, headers=HTMX
    )
    plain = admin_client.post(_url("member_add", store), {"username_or_email": "ghost", "role": "agent"})

    assert htmx.status_code == 400 and "<html" not in htmx.content.decode()
    assert "No user has the username or email “ghost”." in htmx.content.decode()
    assert 'value="ghost"' in htmx.content.decode()
    assert plain.status_code == 400 and "No user has the username or email “ghost”." in plain.content.decode()
    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_an_admin_changes_a_role_with_htmx_and_with_a_plain_post(admin_client, store):
    lee = _member(store, "lee", "agent")

    response = admin_client.post(_url("member_role", store, lee), {"role": "supervisor"}, headers=HTMX)

    assert response.status_code == 200 and "lee is now supervisor." in response.content.decode()
    assert _roles(store)["lee"] == "supervisor"

    response = admin_client.post(_url("member_role", store, lee), {"role": "admin"})

    assert response.status_code == 302 and response.url == _url("detail", store)
    assert _roles(store)["lee"] == "admin"


@pytest.mark.django_db
def test_demoting_the_last_admin_through_the_page_is_refused_with_a_message(admin_client, store, owner):
    membership = Membership.objects.get(user=owner)

    htmx = admin_client.post(_url("member_role", store, membership), {"role": "agent"}, headers=HTMX)
    plain = admin_client.post(_url("member_remove", store, membership))

    assert htmx.status_code == 400 and "olive is the store&#x27;s only admin" in htmx.content.decode()
    assert plain.status_code == 400 and "only admin and cannot be removed" in plain.content.decode()
    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_an_admin_removes_a_member_with_htmx_and_with_a_plain_post(admin_client, store):
    lee = _member(store, "lee", "agent")
    kim = _member(store, "kim", "supervisor")

    response = admin_client.post(_url("member_remove", store, lee), headers=HTMX)

    body = response.content.decode()
    assert response.status_code == 200 and "Removed lee from Test Shop." in body
    assert f'data-member-id="{lee.pk}"' not in body and f'data-member-id="{kim.pk}"' in body

    response = admin_client.post(_url("member_remove", store, kim))

    assert response.status_code == 302
    assert _roles(store) == {"olive": "admin"}


@pytest.mark.django_db
def test_an_admin_who_steps_down_is_sent_back_to_the_store_list(admin_client, store, owner):
    _member(store, "ada", "admin")

    response = admin_client.post(
        _url("member_role", store, Membership.objects.get(user=owner)), {"role": "agent"}, headers=HTMX
    )

    assert response["HX-Redirect"] == reverse("stores:list")
    assert admin_client.get(_url("detail", store)).status_code == 404


@pytest.mark.django_db
def test_the_settings_form_saves_and_a_bad_time_zone_is_a_form_error_that_writes_nothing(admin_client, store):
    bad = admin_client.post(_url("detail", store), {**SETTINGS, "timezone": "Mars/Olympus"})

    assert bad.status_code == 400
    assert "Mars/Olympus is not a known IANA time zone." in bad.content.decode()
    store.refresh_from_db()
    assert (store.name, store.timezone) == ("Test Shop", "Asia/Kuala_Lumpur")

    good = admin_client.post(_url("detail", store), SETTINGS, follow=True)

    assert "Saved the settings of Renamed Shop." in good.content.decode()
    store.refresh_from_db()
    assert (store.name, store.timezone, store.region) == ("Renamed Shop", "Asia/Bangkok", "TH")


# --- scoping: another store's object is a 404 on every path -----------------------------------------


def _every_path(store: Store, membership: Membership) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("get", _url("detail", store), {}),
        ("post", _url("detail", store), SETTINGS),
        ("post", _url("member_add", store), {"username_or_email": "lee", "role": "admin"}),
        ("post", _url("member_role", store, membership), {"role": "admin"}),
        ("post", _url("member_remove", store, membership), {}),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "supervisor"])
@pytest.mark.parametrize("htmx", [False, True])
def test_agents_and_supervisors_get_404_on_every_management_path(store, owner, role, htmx):
    client = _client(_member(store, "sam", role).user)
    _user("lee")
    target = Membership.objects.get(user=owner)

    for method, url, data in _every_path(store, target):
        response = getattr(client, method)(url, data, headers=HTMX if htmx else {})
        assert response.status_code == 404, (method, url)

    assert _roles(store) == {"olive": "admin", "sam": role}
    store.refresh_from_db()
    assert store.name == "Test Shop"


@pytest.mark.django_db
def test_an_admin_of_one_store_gets_404_for_another_store(admin_client, store, other_store):
    foreign = _member(other_store, "ola", "admin")
    _user("lee")

    for method, url, data in _every_path(other_store, foreign):
        assert getattr(admin_client, method)(url, data).status_code == 404, (method, url)
    # a membership of the other store reached through the admin's own store is no better
    assert admin_client.post(_url("member_role", store, foreign), {"role": "agent"}).status_code == 404
    assert admin_client.post(_url("member_remove", store, foreign)).status_code == 404

    assert _roles(other_store) == {"ola": "admin"}
    other_store.refresh_from_db()
    assert other_store.name == "Other Shop"


@pytest.mark.django_db
def test_a_superuser_manages_any_store_and_anonymous_users_are_sent_to_log_in(client, store):
    root = _client(_user("root", is_superuser=True))

    assert root.get(_url("detail", store)).status_code == 200
    assert 'data-store-code="store-a"' in root.get(reverse("stores:list")).content.decode()
    response = client.get(_url("detail", store))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


# --- query count ----------------------------------------------------------------------------------


def _count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_members_page_costs_the_same_queries_for_3_and_30_members(admin_client, store):
    for n in range(2):
        _member(store, f"few{n}", "agent", email=f"few{n}@example.com")
    url = _url("detail", store)
    few = _count_queries(admin_client, url)
    partial_few = len(_htmx_queries(admin_client, store))

    for n in range(27):
        _member(store, f"many{n}", "supervisor" if n % 3 else "agent", email=f"many{n}@example.com")

    assert Membership.objects.filter(store=store).count() == 30
    assert _count_queries(admin_client, url) == few
    assert len(_htmx_queries(admin_client, store)) == partial_few
    assert few <= 8  # the members, the tracking connections, the API keys and the webhook endpoints


def _htmx_queries(client: Client, store: Store):
    membership = Membership.objects.get(store=store, user__username="few0")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(_url("member_role", store, membership), {"role": "agent"}, headers=HTMX)
        assert response.status_code == 200
    return queries


# --- concurrency ----------------------------------------------------------------------------------


def _race(moves: list[tuple[object, Membership]]) -> tuple[list[str], list[BaseException]]:
    """Each (actor, membership) demotes the membership to agent in its own thread, all released at once."""
    barrier = threading.Barrier(len(moves))
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def demote(actor, membership: Membership) -> None:
        try:
            barrier.wait()
            member_set_role(membership=membership, actor=actor, role="agent")
            outcomes.append("demoted")
        except (MembershipError, PermissionDenied):
            outcomes.append("refused")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=demote, args=move) for move in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
@pytest.mark.parametrize("who_demotes", ["each_other", "themselves"])
def test_two_admins_demoting_the_two_last_admins_at_once_leave_exactly_one_admin(who_demotes):
    for round_ in range(5):
        store = make_store(code=f"race-{who_demotes}-{round_}")
        ann = _member(store, f"ann{round_}-{who_demotes}", "admin")
        ben = _member(store, f"ben{round_}-{who_demotes}", "admin")
        if who_demotes == "each_other":
            moves = [(ann.user, ben), (ben.user, ann)]
        else:
            moves = [(ann.user, ann), (ben.user, ben)]

        outcomes, errors = _race(moves)

        assert errors == []
        assert sorted(outcomes) == ["demoted", "refused"]
        assert Membership.objects.filter(store=store, role="admin").count() == 1
