"""The front door's decision on its own: a request and the configuration in, a Target or
the proxy's own Answer out (handlers/door/target.py ``decide``). No sockets: requests are
built in memory, and nothing is written to anyone."""

from __future__ import annotations

from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from handlers.config.options import Options
from handlers.config.sites import BackendSite, build_site_table
from handlers.context import ProxyContext
from handlers.door.identity import Identity
from handlers.door.target import Answer, SiteList, Target, decide, site_list

SECRET = "s" * 32


def _context(options: Options | None = None, **sites: dict) -> ProxyContext:
    table = build_site_table(
        {
            name: BackendSite(name, f"http://10.0.0.{i}:8080", None, [], **extra)
            for i, (name, extra) in enumerate(sites.items(), start=1)
        }
    )
    # The client is never asked for anything by a decision.
    return ProxyContext(table=table, options=options or Options(), client=None)  # type: ignore[arg-type]


def _request(uri: str, method: str = "GET", **headers: str) -> HTTPServerRequest:
    fields = HTTPHeaders({"Host": "proxy"})
    for name, value in headers.items():
        fields[name.replace("_", "-")] = value
    request = HTTPServerRequest(
        start_line=RequestStartLine(method, uri, "HTTP/1.1"), headers=fields
    )
    request.remote_ip = "192.0.2.7"
    return request


def _login(context: ProxyContext, user: str, groups: frozenset[str] = frozenset()) -> str:
    assert context.sessions is not None
    return f".proxy-session={context.sessions.issue(Identity(user, groups=groups))}"


def test_a_prefixed_request_gets_its_site_and_backend_path():
    target = decide(_request("/.site.wiki/page?q=1"), _context(wiki={}))
    assert isinstance(target, Target)
    assert (target.site.name, target.path, target.via) == ("wiki", "/page?q=1", "prefix")
    assert not target.secure_client


def test_an_unknown_site_is_a_404_answer():
    answer = decide(_request("/.site.nope/x"), _context(wiki={}))
    assert answer == Answer(
        404, "Unknown site", "No site named 'nope' is configured on this proxy."
    )


def test_a_bare_root_without_a_site_cookie_is_the_site_list():
    answer = decide(_request("/"), _context(wiki={}, blog={}))
    assert isinstance(answer, Answer) and answer.status == 200
    assert answer.sites == SiteList(None, frozenset({"wiki", "blog"}), None)
    assert ("Cache-Control", "no-store") in answer.headers


def test_the_site_list_shows_only_the_sites_a_client_may_open():
    context = _context(wiki={}, lab={"client_allow": ["10.0.0.0/8"]})
    answer = site_list(_request("/.proxy/"), context, "wiki")
    assert answer.sites == SiteList("wiki", frozenset({"wiki"}), None)


def test_a_denied_path_is_refused_with_403_and_nothing_else():
    context = _context(wiki={"deny": [r"^/admin"]})
    assert isinstance(decide(_request("/.site.wiki/page"), context), Target)
    answer = decide(_request("/.site.wiki/admin/x"), context)
    assert answer == Answer(
        403,
        "Forbidden",
        "You may not open this through the proxy.",
        refused="path rule",
        site="wiki",
    )


def test_a_client_outside_the_sites_networks_is_refused():
    answer = decide(_request("/.site.lab/"), _context(lab={"client_allow": ["10.0.0.0/8"]}))
    assert isinstance(answer, Answer) and answer.status == 403


def test_without_a_login_a_navigation_goes_to_the_login_page_and_the_rest_gets_401():
    context = _context(Options(users={"alice": "hash"}, cookie_secret=SECRET), wiki={})
    page = decide(_request("/.site.wiki/a?b=1", Sec_Fetch_Mode="navigate"), context)
    assert page == Answer(
        302,
        "Found",
        location="/.proxy/login?next=%2F.site.wiki%2Fa%3Fb%3D1",
        refused="not signed in",
        site="wiki",
    )
    fetch = decide(_request("/.site.wiki/api", "POST"), context)
    assert isinstance(fetch, Answer) and fetch.status == 401 and fetch.location is None
    assert fetch.refused == "not signed in"
    assert site_list(_request("/"), context, None) == Answer(302, "Found", location="/.proxy/login")


def test_a_logged_in_user_opens_only_the_sites_named_for_them():
    options = Options(users={"alice": "hash", "bob": "hash"}, cookie_secret=SECRET)
    context = _context(options, wiki={}, hr={"users": ["bob"]})
    cookie = _login(context, "alice")
    assert isinstance(decide(_request("/.site.wiki/", Cookie=cookie), context), Target)
    refused = decide(_request("/.site.hr/", Cookie=cookie), context)
    assert isinstance(refused, Answer) and refused.status == 403
    assert refused.refused == "user or group" and refused.user == "alice"
    answer = site_list(_request("/", Cookie=cookie), context, None)
    assert answer.sites == SiteList(None, frozenset({"wiki"}), "alice")


def test_groups_open_sites_and_choose_the_path_rules():
    options = Options(users={"alice": "hash", "bob": "hash"}, cookie_secret=SECRET)
    context = _context(
        options,
        wiki={"allow": {"editors": [".*"], "*": ["^/read/"]}},
        hr={"groups": ["hr"]},
        lab={"users": ["bob"], "groups": ["lab"]},
    )
    alice = _login(context, "alice", frozenset({"hr"}))
    bob = _login(context, "bob", frozenset({"editors"}))
    assert isinstance(decide(_request("/.site.hr/", Cookie=alice), context), Target)
    assert decide(_request("/.site.hr/", Cookie=bob), context).status == 403
    assert isinstance(decide(_request("/.site.lab/", Cookie=bob), context), Target)
    assert decide(_request("/.site.lab/", Cookie=alice), context).status == 403
    assert isinstance(decide(_request("/.site.wiki/read/x", Cookie=alice), context), Target)
    assert decide(_request("/.site.wiki/edit/x", Cookie=alice), context).status == 403
    assert isinstance(decide(_request("/.site.wiki/edit/x", Cookie=bob), context), Target)
    listed = site_list(_request("/", Cookie=alice), context, None)
    assert listed.sites == SiteList(None, frozenset({"wiki", "hr"}), "alice")


def test_a_forged_or_foreign_session_is_nobody():
    options = Options(users={"alice": "hash"}, cookie_secret=SECRET)
    context = _context(options, wiki={})
    other = _context(Options(users={"alice": "hash"}, cookie_secret="another-secret-0123"), wiki={})
    for cookie in (_login(other, "alice"), ".proxy-session=alice", ".proxy-session=2|1:0|x"):
        answer = decide(_request("/.site.wiki/", "POST", Cookie=cookie), context)
        assert isinstance(answer, Answer) and answer.status == 401, cookie


def test_targets_a_forward_proxy_or_a_fragment_would_use_are_400():
    context = _context(wiki={})
    for uri in ("http://example.com/", "/.site.wiki/a#b", "/.site.wiki/a\x01"):
        answer = decide(_request(uri), context)
        assert isinstance(answer, Answer) and answer.status == 400, uri


def test_redirects_add_the_slash_after_the_prefix_and_keep_a_pages_navigation_on_its_site():
    context = _context(wiki={})
    assert decide(_request("/.site.wiki?x=1"), context) == Answer(
        302, "Found", location="/.site.wiki/?x=1"
    )
    navigation = _request(
        "/other", Referer="http://proxy/.site.wiki/page", Sec_Fetch_Mode="navigate"
    )
    assert decide(navigation, context) == Answer(302, "Found", location="/.site.wiki/other")
