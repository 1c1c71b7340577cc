// web_proxy's in-page URL shim (README: "How a page reaches its site").
// A page of site S builds URLs in script that the proxy never sees as text: "/api",
// location.origin + "/api", "ws://" + location.host + "/ws", a backend's own
// "http://10.1.2.3/x". This maps each to the proxy URL of its site (/.site.S/api) at
// the points where a page hands a URL to the browser. Full-line comments are
// stripped when the proxy serves this file.
(function (root) {
  "use strict";
  var PREFIX = "/.site.";
  var ABS = /^(?:([a-z][a-z0-9+.-]*):)?\/\/([^\/?#\\]*)(.*)$/i;
  var DEFAULT_PORT = { http: ":80", https: ":443", ws: ":80", wss: ":443" };

  function ours(path) {
    return path.lastIndexOf(PREFIX, 0) === 0 || path === "/.proxy" ||
      path.lastIndexOf("/.proxy/", 0) === 0;
  }

  // The mapping for one page: its site, the backends' origins ({"http://host:port":
  // name}, default ports left out) and the page's location ({protocol, host, href}).
  function mapper(site, origins, page) {
    var own = page.protocol + "//" + page.host;
    var wsScheme = page.protocol === "https:" ? "wss:" : "ws:";
    function prefixed(name, rest) {
      return PREFIX + name + (rest.charAt(0) === "/" ? rest : "/" + rest);
    }
    return function map(url) {
      if (typeof url !== "string") return url;
      var c1 = url.charAt(1);
      if (url.charAt(0) === "/" && c1 !== "/" && c1 !== "\\") {
        return ours(url) ? url : prefixed(site, url);
      }
      var m = ABS.exec(url);
      if (!m) {
        if (url.indexOf("..") === -1 || !page.href) return url;
        // "../../x" from /.site.S/a/ climbs out of the prefix.
        var u = new URL(url, page.href);
        if (u.protocol + "//" + u.host !== own || ours(u.pathname)) return url;
        return prefixed(site, u.pathname + u.search + u.hash);
      }
      var scheme = (m[1] || page.protocol.slice(0, -1)).toLowerCase();
      var http = scheme === "wss" ? "https" : scheme === "ws" ? "http" : scheme;
      if (http !== "http" && http !== "https") return url;
      var host = m[2].toLowerCase(), rest = m[3] || "/";
      var port = DEFAULT_PORT[scheme];
      if (host.slice(-port.length) === port) host = host.slice(0, -port.length);
      var origin = http + "://" + host;
      if (origin === own) return ours(rest) ? url : url.slice(0, url.length - m[3].length) + prefixed(site, rest);
      var name = origins[origin];
      if (name === undefined) return url;
      return (http === scheme ? page.protocol : wsScheme) + "//" + page.host + prefixed(name, rest);
    };
  }

  if (typeof module === "object" && module.exports) module.exports = { mapper: mapper };
  var doc = root.document;
  if (!doc || root.__webProxyShim) return;
  var me = doc.currentScript, SITE = me && me.getAttribute("data-site");
  if (!SITE) return;
  var ORIGINS = /*ORIGINS*/{};
  var loc = root.location;
  var map = mapper(SITE, ORIGINS, {
    protocol: loc.protocol,
    host: loc.host,
    get href() { return doc.baseURI; }
  });
  var slice = Array.prototype.slice;
  // A value that needs no change is passed on as it came (a TrustedScriptURL stays one).
  function fix(v) {
    if (v == null) return v;
    var s = String(v), m = map(s);
    return m === s ? v : m;
  }
  root.__webProxyShim = { site: SITE, map: map };

  // obj[key], a function, passing its argument i through fixer first (the argument
  // count is kept: XHR's open(m, u, undefined) means a synchronous request).
  function hookArg(obj, key, i, fixer) {
    var f = obj && obj[key];
    if (typeof f === "function") obj[key] = function () {
      var a = slice.call(arguments);
      if (a.length > i) a[i] = fixer(a[i]);
      return f.apply(this, a);
    };
  }
  // A property's setter, passing the value through fixer first.
  function hookSetter(proto, prop, fixer) {
    var d = proto && Object.getOwnPropertyDescriptor(proto, prop);
    if (d && d.set && d.configurable) Object.defineProperty(proto, prop, {
      configurable: true, enumerable: d.enumerable, get: d.get,
      set: function (v) { d.set.call(this, fixer(v)); }
    });
  }
  // A constructor, passing its first argument through fixer first. Its objects still
  // name it as their constructor (x.constructor === Request).
  function hookNew(name, fixer) {
    var C = root[name];
    if (typeof C !== "function" || !root.Proxy) return;
    var P = root[name] = new Proxy(C, {
      construct: function (target, args, newTarget) {
        args = slice.call(args);
        if (args.length) args[0] = fixer(args[0]);
        return Reflect.construct(target, args, newTarget);
      }
    });
    if (C.prototype && C.prototype.constructor === C) C.prototype.constructor = P;
  }

  // A Request is mapped when the page makes it: one cannot be remade with another URL
  // and stay the same. new Request(url, request) takes the body as a stream (Chromium
  // then wants duplex and HTTP/2: "Failed to fetch"), and members it does not expose
  // (priority) are lost. So fetch passes a Request on as it came (fix leaves objects
  // it cannot map alone); one made where no shim runs (another realm) reaches its
  // site by the Referer.
  hookNew("Request", fix);
  hookArg(root, "fetch", 0, fix);
  hookArg(root.XMLHttpRequest && root.XMLHttpRequest.prototype, "open", 1, fix);
  hookNew("WebSocket", function (v) {
    var m = fix(v);
    return typeof m === "string" && m !== v && m.charAt(0) === "/" ?
      (loc.protocol === "https:" ? "wss:" : "ws:") + "//" + loc.host + m : m;
  });
  hookNew("EventSource", fix);
  hookNew("Worker", fix);
  hookNew("SharedWorker", fix);
  hookArg(root.navigator, "sendBeacon", 0, fix);
  hookArg(root, "open", 0, fix);
  hookArg(root.History && root.History.prototype, "pushState", 2, fix);
  hookArg(root.History && root.History.prototype, "replaceState", 2, fix);

  // URL properties of elements: script.src = "/chunk.js" (webpack's chunk loading),
  // img.src, link.href, a.href, form.action, ...
  var PROPS = {
    Script: "src", Image: "src", IFrame: "src", Source: "src", Media: "src", Embed: "src",
    Track: "src", Input: "src formAction", Link: "href", Anchor: "href", Area: "href",
    Form: "action", Button: "formAction", Object: "data", Video: "poster"
  };
  Object.keys(PROPS).forEach(function (kind) {
    var C = root["HTML" + kind + "Element"];
    PROPS[kind].split(" ").forEach(function (prop) { hookSetter(C && C.prototype, prop, fix); });
  });
  var ATTRS = ["src", "href", "action", "formaction", "poster"];
  var EP = root.Element.prototype, setAttr = EP.setAttribute;
  EP.setAttribute = function (name, value) {
    var a = slice.call(arguments);
    if (a.length > 1 && ATTRS.indexOf(String(name).toLowerCase()) !== -1) a[1] = fix(value);
    return setAttr.apply(this, a);
  };
  // Markup inserted as text: root-relative URL attributes are mapped in the text, before
  // the browser parses it and starts loading them.
  var IN_HTML = /(\s(?:src|href|action|formaction|poster)\s*=\s*["']?)\/(?![\/\\]|\.site\.|\.proxy\/)/gi;
  function fixHtml(h) {
    return typeof h === "string" ? h.replace(IN_HTML, "$1" + PREFIX + SITE + "/") : h;
  }
  hookSetter(EP, "innerHTML", fixHtml);
  hookSetter(EP, "outerHTML", fixHtml);
  hookArg(EP, "insertAdjacentHTML", 1, fixHtml);
  hookArg(root.Document.prototype, "write", 0, fixHtml);
  hookArg(root.Document.prototype, "writeln", 0, fixHtml);
  // What still slips through (absolute backend URLs in markup, say) is fixed once
  // inserted.
  function fixElement(el) {
    for (var i = 0; i < ATTRS.length; i++) {
      var v = el.getAttribute(ATTRS[i]);
      if (v) {
        var m = map(v);
        if (m !== v) setAttr.call(el, ATTRS[i], m);
      }
    }
  }
  new MutationObserver(function (records) {
    records.forEach(function (r) {
      r.addedNodes.forEach(function (n) {
        if (n.nodeType !== 1) return;
        fixElement(n);
        if (n.firstElementChild) n.querySelectorAll("[" + ATTRS.join("],[") + "]").forEach(fixElement);
      });
    });
  }).observe(doc.documentElement, { childList: true, subtree: true });

  var FP = root.HTMLFormElement.prototype;
  ["submit", "requestSubmit"].forEach(function (k) {
    var f = FP[k];
    if (f) FP[k] = function () { fixElement(this); return f.apply(this, arguments); };
  });
  doc.addEventListener("submit", function (e) {
    fixElement(e.target);
    if (e.submitter) fixElement(e.submitter);
  }, true);

  // location.href = "/x" cannot be hooked (location is unforgeable); where the
  // Navigation API exists, such a navigation is redone with the mapped URL. Elsewhere
  // the proxy redirects it, knowing the page from the Referer.
  var N = root.navigation;
  if (N && N.addEventListener) N.addEventListener("navigate", function (e) {
    if (!e.cancelable || e.hashChange || e.formData || e.downloadRequest != null ||
        e.navigationType === "traverse") return;
    var u = e.destination.url, m = map(u);
    if (m === u) return;
    e.preventDefault();
    N.navigate(m, { history: e.navigationType === "replace" ? "replace" : "auto" });
  });

  // document.cookie: the proxy keeps the site's cookies under its prefix, with a copy
  // named ".site~S~name" for unprefixed requests (handlers/mapping/cookies.py). Scripts see
  // and set the site's cookies by their own names.
  var DP = root.Document.prototype, CK = Object.getOwnPropertyDescriptor(DP, "cookie");
  var MINE = ".site~" + SITE + "~";
  function backendDir() {
    var p = loc.pathname, at = PREFIX + SITE + "/";
    if (p.lastIndexOf(at, 0) === 0) p = p.slice(at.length - 1);
    return p.slice(0, p.lastIndexOf("/")) || "/";
  }
  if (CK && CK.configurable) Object.defineProperty(DP, "cookie", {
    configurable: true, enumerable: CK.enumerable,
    get: function () {
      var shown = [], names = {}, fallback = [];
      CK.get.call(this).split("; ").forEach(function (c) {
        var n = c.split("=")[0];
        if (n.lastIndexOf(MINE, 0) === 0) fallback.push(c.slice(MINE.length));
        else if (c && n !== ".site" && n.lastIndexOf(".site~", 0) !== 0) {
          shown.push(c);
          names[n] = 1;
        }
      });
      fallback.forEach(function (c) { if (!names[c.split("=")[0]]) shown.push(c); });
      return shown.join("; ");
    },
    set: function (v) {
      var parts = String(v).split(";"), pair = parts[0].trim(), path = null, rest = "";
      for (var i = 1; i < parts.length; i++) {
        var kv = parts[i].split("=");
        if (kv[0].trim().toLowerCase() === "path") path = (kv[1] || "").trim();
        else rest += ";" + parts[i];
      }
      if (path && path.charAt(0) !== "/") path = null;
      CK.set.call(this, pair + rest + (path ? "; path=" + map(path) : ""));
      if (pair.indexOf("=") > 0 && pair.lastIndexOf(".site", 0) !== 0) {
        CK.set.call(this, MINE + pair + rest + "; path=" + (path || backendDir()));
      }
    }
  });
})(this);
