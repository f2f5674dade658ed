// A small OpenID Connect provider for end-to-end tests, listening on loopback.
//
//   node server.mjs [--port PORT]     (PORT 0, the default, picks a free port)
//
// Once listening it prints exactly one line to stdout:
//
//   OIDC_ISSUER=http://127.0.0.1:PORT
//
// and runs until SIGTERM or SIGINT. Everything (keys, sessions, codes) lives in memory.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { interactionPolicy } from 'oidc-provider';

const CLIENT_ID = 'roi-test';
const CLIENT_SECRET = 'roi-test-secret';
const DEFAULT_REDIRECT_URI = 'http://127.0.0.1:8080/auth/oidc/test/callback';
const SCOPE = 'openid email profile';

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid --port: ${args.port}`);
  process.exit(2);
}

const redirectUris = (process.env.OIDC_REDIRECT_URIS ?? '')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
if (redirectUris.length === 0) redirectUris.push(DEFAULT_REDIRECT_URI);

// Test accounts. The login id is an e-mail address taken from the authorization
// request's login_hint; every such address is a valid account:
//   - accountId and `sub` are "sub-" + the e-mail (so sub never equals the e-mail),
//   - `email` is the e-mail, `name` is its local part,
//   - `email_verified` is true unless the local part starts with "unverified"
//     (e.g. unverified-bob@example.com gets email_verified: false).
const accountIdFor = (email) => `sub-${email}`;

async function findAccount(ctx, id) {
  if (!id.startsWith('sub-')) return undefined;
  const email = id.slice('sub-'.length);
  const localPart = email.split('@')[0];
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email,
        email_verified: !localPart.startsWith('unverified'),
        name: localPart,
      };
    },
  };
}

// Default login/consent policy, plus: if the session belongs to someone other than
// the login_hint, ask for a new login. This lets one cookie jar switch users.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'login_hint_mismatch',
  'login_hint names a different End-User than the current session',
  'login_required',
  (ctx) => {
    const { session, params } = ctx.oidc;
    return Boolean(session.accountId && params.login_hint
      && session.accountId !== accountIdFor(params.login_hint));
  },
));

// RS256 signing key, generated fresh on every start and kept in memory.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    // The library accepts client_secret_basic and client_secret_post
    // interchangeably for a client registered with either of them.
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: redirectUris,
  }],
  jwks: { keys: [signingKey] },
  findAccount,
  responseTypes: ['code'],
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // Put the scope-requested claims in the ID Token too, not only in UserInfo.
  conformIdTokenClaims: false,
  // PKCE: the library default (required for every code flow request, S256 only).
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: { enabled: false },
  },
  interactions: {
    policy,
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  cookies: {
    keys: ['roi-test-cookie-key'],
    // Plain http on loopback: the library only marks cookies Secure when the
    // request itself is https. Use lax everywhere so no SameSite=None cookies
    // (and their ".legacy" twins) are issued.
    long: { signed: true, httpOnly: true, sameSite: 'lax' },
    short: { signed: true, httpOnly: true, sameSite: 'lax' },
  },
  renderError(ctx, out) {
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = `${out.error}: ${out.error_description ?? ''}\n`;
  },
};

// Finishes an interaction without any page: logs in the login_hint user and
// grants it "openid email profile", then redirects (303) back to the authorization
// endpoint, which redirects on to the client's redirect_uri.
async function handleInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { params, session } = details;

  if (!params.login_hint) {
    await provider.interactionFinished(req, res, {
      error: 'login_required',
      error_description: 'no login_hint',
    }, { mergeWithLastSubmission: false });
    return;
  }

  const accountId = accountIdFor(params.login_hint);

  // The library will not swap the user of an existing session without an
  // interactive logout page, so drop the old session and unlink it from this
  // interaction; resuming then starts a fresh session for the new user.
  if (session?.accountId && session.accountId !== accountId) {
    const old = session.uid && await provider.Session.findByUid(session.uid);
    if (old) await old.destroy();
    delete details.session;
    await details.save(details.exp - Math.floor(Date.now() / 1000));
  }

  const grant = new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(SCOPE);
  const missingClaims = details.prompt.details.missingOIDCClaims;
  if (missingClaims) grant.addOIDCClaims(missingClaims);
  const grantId = await grant.save();

  await provider.interactionFinished(req, res, {
    login: { accountId },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);

  // Any http://127.0.0.1:<port>/... (or localhost) redirect URI is accepted for
  // the test client, because the tests bind random ports.
  const { redirectUriAllowed } = provider.Client.prototype;
  provider.Client.prototype.redirectUriAllowed = function allowLoopback(value) {
    if (this.clientId === CLIENT_ID && URL.canParse(value)) {
      const url = new URL(value);
      if (url.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(url.hostname)) return true;
    }
    return redirectUriAllowed.call(this, value);
  };

  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const callback = provider.callback();
  handler = (req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
      handleInteraction(provider, req, res).catch((err) => {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`${err.name}: ${err.error_description ?? err.message}\n`);
      });
      return;
    }
    callback(req, res);
  };

  process.stdout.write(`OIDC_ISSUER=${issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
