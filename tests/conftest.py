from __future__ import annotations

import pytest

from tests.factories import make_membership, make_store, make_user


@pytest.fixture(autouse=True)
def _fresh_wake_throttle():
    """Each test starts with no worker wake-up remembered (portal.tasks.wake throttles per process)."""
    from portal import tasks

    tasks._woken.clear()
    yield
    tasks._woken.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language. A request in another language leaves it active in the
    thread (LocaleMiddleware activates, nothing deactivates), and a later test's messages would be in it."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    """Uploaded evidence lands in a throwaway directory, never in the checkout's media/."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def store(db):
    return make_store(code="store-a")


@pytest.fixture
def other_store(db):
    return make_store(code="store-b", name="Other Shop")


@pytest.fixture
def agent(store):
    user = make_user("alice")
    make_membership(user=user, store=store, role="agent")
    return user


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    client.agent = agent
    return client
