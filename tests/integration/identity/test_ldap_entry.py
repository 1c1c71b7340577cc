"""The entry that lends a signed-in user a name, an e-mail address and groups must be the
one that proved the password. With ``ldap_user_base`` the entry is searched for with
``ldap_user_filter``; a filter on an attribute users can share or set (a display name)
could find someone else's entry. Against a real slapd (tests/support/slapd.py)."""

from __future__ import annotations

import pytest

from handlers.config.sites import BackendSite
from tests.support import start_backend, start_proxy
from tests.support.identity import sign_in
from tests.support.slapd import Directory as Slapd

SECRET = "the cookie secret of the entry tests"


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd-entry")) as slapd:
        # alice's display name (cn) is "mallory": a filter on cn finds her entry for
        # the name "mallory".
        slapd.add_user("alice", "alice-pw", "alice@example.org", cn="mallory", groups=["admins"])
        slapd.add_user("mallory", "mallory-pw", "mallory@example.org", cn="Mal", groups=["guests"])
        yield slapd


def _proxy(loop_thread, slapd, backend, user_filter):
    sites = {"admin": BackendSite("admin", backend.url, groups=["admins"], pass_identity=True)}
    return start_proxy(
        loop_thread,
        sites,
        cookie_secret=SECRET,
        ldap_url=slapd.url,
        ldap_ca_file=slapd.ca_file,
        ldap_user_dn=f"uid={{name}},{slapd.people_dn}",
        ldap_user_base=slapd.people_dn,
        ldap_user_filter=user_filter,
        ldap_group_base=slapd.groups_dn,
    )


def test_a_filter_that_finds_another_entry_lends_nothing(loop_thread, directory):
    backend = start_backend(loop_thread, "admin")
    proxy = _proxy(loop_thread, directory, backend, "(cn={name})")
    # mallory's password is right, and the filter (cn=mallory) finds alice's entry: she
    # is refused, not signed in as alice with alice's groups.
    outcome = sign_in(proxy, "mallory", "mallory-pw", "/.site.admin/")
    assert outcome.status == 401 and not outcome.cookie
    # The same filter selecting the bound account's own entry signs in as usual.
    fair = _proxy(loop_thread, directory, backend, "(uid={name})")
    assert sign_in(fair, "alice", "alice-pw", "/.site.admin/").status == 302
    outcome = sign_in(fair, "mallory", "mallory-pw", "/.site.admin/")
    assert outcome.status == 302 and outcome.cookie
    before = len(backend.seen)
    resp, _ = fair.request("GET", "/.site.admin/", headers={"Cookie": outcome.cookie})
    assert resp.status == 403  # mallory's own groups (guests) do not open it
    assert len(backend.seen) == before
