// A real OpenID Connect provider (npm oidc-provider) for the tests, on plain http on
// 127.0.0.1. Started by tests/support/oidc_provider.py as
//   node tests/support/oidc/provider.mjs CONFIG.json
// The tests must meet the protocol as a real provider speaks it, so this file only adds
// what a deployment adds around the library: accounts, a login page, and consent that
// the operator grants for its own clients. Prints "ready" on stdout once it listens;
// logs each request (method, path, status) to stderr.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

// oidc-provider 9 calls crypto.hash (Node 20.12 and later); older ones fail at the
// first token, so say so at start-up instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 12)) {
  process.stderr.write(`node ${process.versions.node} is too old: oidc-provider 9 needs 20.12 or later\n`);
  process.exit(2);
}

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

// Read at every login and every claims lookup, so that a test can change a user's groups,
// or remove the user, between two sign-ins and see the provider follow.
function readAccounts() {
  return JSON.parse(fs.readFileSync(config.accounts_file, 'utf8'));
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>`;
}

function loginPage(uid, error, login) {
  const message = error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : '';
  return page('Sign in', `${message}
<form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label>Login <input id="login" name="login" autocomplete="username" value="${escapeHtml(login || '')}" required></label>
  <label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
  <button id="submit" type="submit">Sign in</button>
</form>`);
}

async function findAccount(ctx, sub) {
  const account = readAccounts()[sub];
  if (!account) {
    return undefined; // removed: the session's user must sign in again
  }
  return {
    accountId: sub,
    async claims() {
      const current = readAccounts()[sub] || account;
      const claims = {
        sub,
        preferred_username: sub,
        name: current.name ?? sub,
        groups: current.groups ?? [],
      };
      if (current.email) {
        claims.email = current.email;
        claims.email_verified = current.email_verified ?? true;
      }
      return claims;
    },
  };
}

// The signing key: the one a test gave (so that it can forge or predict tokens), else
// a fresh RS256 key for this run.
function signingKeys() {
  if (config.jwks) {
    return config.jwks;
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' }] };
}

// A session whose user is no longer in the accounts file signs in again (the library's
// own checks would go on to consent with no account, and fail with a server_error).
const policy = interactionPolicy.base();
policy.get('login').checks.push(new interactionPolicy.Check(
  'account_gone',
  'the signed-in account no longer exists',
  'login_required',
  (ctx) => Boolean(ctx.oidc.session.accountId && !ctx.oidc.account),
));

const clients = config.clients.map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}));

const idTokenTtl = config.id_token_ttl ?? 3600;

const provider = new Provider(config.issuer, {
  clients,
  jwks: signingKeys(),
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  responseTypes: ['code'],
  // The relying party reads everything from the ID token: no userinfo call.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // Signed cookies with a key per run; names of their own, because cookies are not
  // kept apart by port and the proxy under test also sets cookies on 127.0.0.1.
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
    names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_resume' },
  },
  interactions: { policy },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        // The library's form holds the xsrf token; the button goes inside it, so one
        // click (or one POST of the form's fields) signs out.
        const button = '<button id="logout-confirm" type="submit" name="logout" value="yes">Sign out</button>';
        ctx.body = page('Sign out', form.replace('</form>', `${button}</form>`));
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p id="signed-out">You have signed out.</p>');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    const rows = Object.entries(out)
      .map(([key, value]) => `<p class="${escapeHtml(key)}">${escapeHtml(key)}: ${escapeHtml(value)}</p>`)
      .join('\n');
    ctx.body = page('Error', rows);
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: idTokenTtl,
    Interaction: 3600,
    Session: 24 * 3600,
    Grant: 24 * 3600,
  },
});

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

// Consent is the operator's: every client here is one of its own, so the grant covers
// whatever the request asked for and no consent page is shown.
async function grantConsent(req, res, details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const savedId = await grant.save();
  const consent = grantId ? {} : { grantId: savedId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, path) {
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(path);
  if (!match) {
    send(res, 404, page('Not found', ''));
    return;
  }
  const details = await provider.interactionDetails(req, res);
  if (match[1] !== details.uid) {
    send(res, 400, page('Error', '<p>This sign-in request is not the current one.</p>'));
    return;
  }
  if (req.method === 'GET') {
    if (details.prompt.name === 'consent') {
      await grantConsent(req, res, details);
    } else {
      send(res, 200, loginPage(details.uid));
    }
    return;
  }
  if (req.method !== 'POST' || !match[2] || details.prompt.name !== 'login') {
    send(res, 405, page('Error', '<p>Method not allowed.</p>'));
    return;
  }
  const form = await readForm(req);
  const login = form.get('login') || '';
  const account = readAccounts()[login];
  const given = Buffer.from(form.get('password') || '');
  const expected = Buffer.from(account ? String(account.password) : '');
  if (!account || given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    // 401: the form again, with the login kept and an error shown.
    send(res, 401, loginPage(details.uid, 'Invalid login or password.', login));
    return;
  }
  const result = { login: { accountId: login } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// The library answers its own failures with an error page and says no more: say why.
provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));

const callback = provider.callback();

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, config.issuer).pathname;
  res.on('finish', () => process.stderr.write(`${req.method} ${path} ${res.statusCode}\n`));
  if (!path.startsWith('/interaction/')) {
    callback(req, res);
    return;
  }
  try {
    await interaction(req, res, path);
  } catch (err) {
    process.stderr.write(`interaction error: ${err.stack || err}\n`);
    if (!res.headersSent) {
      const status = err.statusCode || err.status || 500;
      send(res, status, page('Error', `<p class="error">${escapeHtml(err.message)}</p>`));
    }
  }
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});

// Nothing to save: a stop ends the process at once, open connections and all.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
