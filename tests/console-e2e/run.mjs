// The console in headless Chromium (Debian's, driven by playwright-core over the DevTools
// protocol) against a real OpenID provider (oidc-provider, one per organisation, on loopback).
// Started by tests/console-e2e/run.sh, which starts the gateway. Fails (exit 1) on the first
// broken expectation; prints one line per check.
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import Provider from 'oidc-provider';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const GW = process.env.GATEWAY;
const DOCS = process.env.DOCS;
const SDD = '00000001823288444000';
const GORINCHEM = '00000001001234567000';
const UWV = '00000001003214345000';
const BSN = '111222333';

let checks = 0;
function ok(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}

// ---- the OpenID providers ----
const ACCOUNTS = {
  'fg-sdd': { org: SDD, roles: ['privacy-officer'], name: 'Fatima de Vries (FG Sociale Dienst)' },
  'cb-sdd': { org: SDD, roles: ['covenant-admin'], name: 'Kees Bakker (convenantbeheer)' },
  'fg-gorinchem': { org: GORINCHEM, roles: ['privacy-officer'], name: 'Ans Jansen (FG Gorinchem)' },
  'nobody': { org: SDD, roles: ['intern'], name: 'Zonder rol' },
};

// The providers sign ID tokens with ES256 (P-256), the only kind besides EdDSA the console takes
// (DESIGN.md: people's tokens are ES256/EdDSA only, never RS256).
function signingKey(name) {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: `${name}-es256` };
}

function startProvider(port, name, oin) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks: { keys: [signingKey(name)] },
    clients: [{
      client_id: `console-${name}`,
      client_secret: `${name}-console-secret`,
      redirect_uris: [`${GW}/console/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['name', 'roles', 'org'] },
    conformIdTokenClaims: false,
    cookies: { keys: ['console-e2e-only'] },
    features: { devInteractions: { enabled: true } },
    // The console is a first-party client: no consent screen.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile');
      grant.addOIDCClaims(['name', 'roles', 'org']);
      await grant.save();
      return grant;
    },
    async findAccount(ctx, id) {
      // Each provider knows its own organisation's people; `fg-sdd` at Gorinchem's provider
      // is a person of another organisation (the console must refuse the login).
      const a = ACCOUNTS[id];
      if (!a) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...a }; } };
    },
  });
  const server = http.createServer(provider.callback());
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

const servers = [
  await startProvider(Number(process.env.SDD_OP_PORT), 'sdd', SDD),
  await startProvider(Number(process.env.GORINCHEM_OP_PORT), 'gorinchem', GORINCHEM),
];

// ---- the browser ----
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function axe(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.error(`  axe ${v.impact}: ${v.id} ${v.help} (${v.nodes.length})`);
  ok(bad.length === 0, `axe-core: no serious or critical violations on ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${DOCS}/console-${name}.png`, fullPage: true });
}

async function login(context, providerLabel, account, succeeds = true) {
  const page = await context.newPage();
  await page.goto(`${GW}/console/`);
  await page.getByRole('link', { name: providerLabel }).click();
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', account);
  await page.fill('input[name="password"]', 'any');
  await Promise.all([
    // On success the callback's page moves on to the home page by itself (meta refresh).
    page.waitForURL((u) => u.pathname === (succeeds ? '/console/' : '/console/callback')),
    page.click('button[type="submit"]'),
  ]);
  await page.waitForLoadState('load');
  return page;
}

async function newContext() {
  return browser.newContext({ ignoreHTTPSErrors: true, locale: 'nl-NL' });
}

try {
  // -- the login page, before login --
  {
    const ctx = await newContext();
    const page = await ctx.newPage();
    const resp = await page.goto(`${GW}/console/`);
    const h = resp.headers();
    ok(h['content-security-policy'].includes("default-src 'none'")
      && h['content-security-policy'].includes("frame-ancestors 'none'")
      && !h['content-security-policy'].includes('script-src'), 'strict CSP, no scripts');
    ok(h['x-frame-options'] === 'DENY', 'X-Frame-Options DENY');
    ok(await page.getByRole('link', { name: 'Inloggen bij Sociale Dienst Drechtsteden' }).count() === 1,
      'the login page offers the organisation\'s provider (Dutch by default)');
    await axe(page, 'the login page');
    await shot(page, 'login');
    await ctx.close();
  }

  // -- privacy officer of the Sociale Dienst --
  const ctx = await newContext();
  let page = await login(ctx, 'Inloggen bij Sociale Dienst Drechtsteden', 'fg-sdd');
  ok((await page.textContent('body')).includes('Fatima de Vries'), 'logged in through the provider\'s form');
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === '__Host-pw_session');
  ok(session && session.httpOnly && session.secure && session.sameSite === 'Strict',
    'session cookie HttpOnly; Secure; SameSite=Strict');
  ok(!cookies.some((c) => c.value.includes(BSN)), 'no BSN in any cookie');
  await axe(page, 'home');
  await shot(page, 'home');

  await page.goto(`${GW}/console/overview`);
  ok(await page.locator('svg.chart rect').count() > 0 && (await page.textContent('main')).includes('Weigeringen per reden'),
    'the overview: a server-drawn chart, refusals by reason, chain state');
  await axe(page, 'overview');
  await shot(page, 'overview');

  await page.goto(`${GW}/console/records`);
  const rows = await page.locator('tbody tr').count();
  ok(rows > 0, `records page lists the organisation's records (${rows})`);
  await axe(page, 'records');
  await shot(page, 'records');
  const hrefs = await page.locator('tbody tr td:first-child a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  // A record only the Sociale Dienst and UWV are party to (a disclosure), for the other officer.
  const texts = await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.innerText));
  const sddOnly = hrefs.find((h, i) => texts[i].includes(SDD) && texts[i].includes(UWV) && !texts[i].includes(GORINCHEM));
  ok(Boolean(sddOnly), 'a record between the Sociale Dienst and UWV exists');

  await page.goto(`${GW}${sddOnly}`);
  ok((await page.textContent('main')).includes('Hash'), 'a record\'s detail page');
  await axe(page, 'record detail');
  await shot(page, 'record');

  await page.goto(`${GW}/console/records`);
  await page.selectOption('#decision', 'refuse');
  await page.click('form.filter button[type="submit"]');
  ok(page.url().includes('decision=refuse'), 'the filter is in the address (no person in it)');
  ok(await page.locator('tbody .permit').count() === 0, 'filtered on refusals');
  await axe(page, 'records filtered');

  // The data-subject report: the BSN goes in the form's POST body.
  await page.goto(`${GW}/console/subject-report`);
  await axe(page, 'subject report form');
  await shot(page, 'subject-report-form');
  await page.fill('#bsn', BSN);
  await Promise.all([page.waitForLoadState('load'), page.click('main button[type="submit"]')]);
  ok(!page.url().includes(BSN), 'the BSN is not in the address');
  const report = await page.textContent('body');
  ok(report.length > 200, 'the data-subject report is shown');
  await axe(page, 'subject report');
  await shot(page, 'subject-report');

  // The per-employee usage report (the last seven days are filled in).
  await page.goto(`${GW}/console/usage`);
  await axe(page, 'usage report form');
  await Promise.all([page.waitForLoadState('load'), page.click('main button[type="submit"]')]);
  ok((await page.textContent('body')).includes('Gebruiksrapportage'), 'the usage report is shown');
  await axe(page, 'usage report');
  await shot(page, 'usage-report');

  // Export download.
  await page.goto(`${GW}/console/export`);
  await axe(page, 'export');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('main button[type="submit"]'),
  ]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  ok(csv.split('\n').length > 2, 'the export downloads as CSV');

  // Verify now.
  await page.goto(`${GW}/console/verify`);
  await page.click('main button[type="submit"]');
  await page.waitForLoadState('load');
  ok((await page.textContent('main')).includes('De keten is in orde'), 'verify now: the chain is intact');
  await axe(page, 'verify');
  await shot(page, 'verify');

  // English by the switch.
  await page.click('a[href="/console/lang/en"]');
  ok((await page.textContent('main')).includes('Choose what to do'), 'English by the switch');
  await page.click('a[href="/console/lang/nl"]');

  // Attacks with this officer's session.
  let r = await page.request.post(`${GW}/console/verify`, { form: {} });
  ok(r.status() === 403, 'a form without its CSRF token is refused (403)');
  r = await page.request.post(`${GW}/console/subject-report`, { form: { bsn: BSN, csrf: 'guessed' } });
  ok(r.status() === 403 && !(await r.text()).includes(BSN), 'a form with a wrong CSRF token is refused, the BSN not echoed');
  for (const url of [`/console/records?bsn=${BSN}`, `/console/subject-report?subject=${BSN}`, `/console/records?purpose=${BSN}&bsn=1`]) {
    r = await page.request.get(`${GW}${url}`);
    ok(r.status() === 400 && !(await r.text()).includes(BSN), `a BSN in the address is refused without echo: ${url}`);
  }
  r = await page.request.get(`${GW}/console/covenants`);
  ok(r.status() === 403, 'an officer may not open the covenant pages');

  // Logout ends the session on the server.
  await page.goto(`${GW}/console/`);
  await page.click('header form button[type="submit"]');
  await page.waitForLoadState('load');
  ok((await page.textContent('main')).includes('uitgelogd'), 'logged out');
  await ctx.addCookies([{ name: session.name, value: session.value, url: `${GW}/`,
    secure: true, httpOnly: true, sameSite: 'Strict' }]);
  r = await page.request.get(`${GW}/console/records`);
  ok(!(await r.text()).includes('<tbody>'), 'the old session cookie no longer opens the records');
  await ctx.close();

  // -- the privacy officer of Gorinchem must not see the Sociale Dienst's records --
  const ctx2 = await newContext();
  page = await login(ctx2, 'Inloggen bij Gemeente Gorinchem', 'fg-gorinchem');
  r = await page.request.get(`${GW}${sddOnly}`);
  ok(r.status() === 404, 'another organisation\'s record is not found for Gorinchem\'s officer');
  await page.goto(`${GW}/console/records`);
  const gorHrefs = await page.locator('tbody tr td:first-child a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  ok(!gorHrefs.includes(sddOnly), 'the Sociale Dienst\'s record is not in Gorinchem\'s list');
  await ctx2.close();

  // -- a person of another organisation at Gorinchem's provider, and a person without a role --
  for (const [label, account, what] of [
    ['Inloggen bij Gemeente Gorinchem', 'fg-sdd', 'a person whose organisation claim is not the provider\'s'],
    ['Inloggen bij Sociale Dienst Drechtsteden', 'nobody', 'a person without a console role'],
  ]) {
    const c = await newContext();
    const p = await login(c, label, account, false);
    ok((await p.textContent('main')).includes('Inloggen is niet gelukt'), `login refused: ${what}`);
    await axe(p, 'the error page');
    if (account === 'nobody') await shot(p, 'error');
    await c.close();
  }

  // -- covenant administrator --
  const ctx3 = await newContext();
  page = await login(ctx3, 'Inloggen bij Sociale Dienst Drechtsteden', 'cb-sdd');
  await page.goto(`${GW}/console/covenants`);
  ok((await page.textContent('main')).includes('drechtsteden-max-ww'), 'the covenants list');
  await axe(page, 'covenants');
  await shot(page, 'covenants');
  r = await page.request.get(`${GW}/console/records`);
  ok(r.status() === 403, 'a covenant administrator may not read the audit log');

  await page.click('a[href="/console/covenants/drechtsteden-max-ww"]');
  const cov = await page.textContent('main');
  ok(cov.includes('ondertekend') && cov.includes('job-mediation') && cov.includes('Bewaartermijn'),
    'a version with its parties\' signatures and its grants in words');
  await axe(page, 'covenant');
  await shot(page, 'covenant');

  // An amendment with errors: shown at their path.
  const doc = {
    id: 'drechtsteden-max-ww', version: 2, title: 'Convenant Max WW Drechtsteden (wijziging)',
    region: 'Drechtsteden', valid_from: '2026-01-01', valid_until: '2028-12-31',
    parties: [
      { oin: UWV, name: 'UWV', role: 'source' },
      { oin: SDD, name: 'Sociale Dienst Drechtsteden', role: 'recipient' },
    ],
    grants: [{
      purpose: 'bijstand-intake', source: UWV, recipients: [SDD],
      fields: ['ww_end_date', 'no_such_field'], legal_basis: 'legal-obligation',
      basis_text: 'AVG art. 6(1)(c)', consent_required: false, special_categories: false,
      retention_days: 365,
    }],
  };
  await page.goto(`${GW}/console/covenants/new`);
  await page.fill('#document', JSON.stringify(doc, null, 2));
  await page.click('main button[type="submit"]');
  await page.waitForLoadState('load');
  const problems = await page.textContent('main');
  ok(problems.includes('grants[0].fields'), 'validation errors are shown at their path');
  await axe(page, 'draft with errors');
  await shot(page, 'draft-errors');
  doc.grants[0].fields = ['ww_end_date'];
  await page.fill('#document', JSON.stringify(doc, null, 2));
  await page.click('main button[type="submit"]');
  await page.waitForLoadState('load');
  const amended = await page.textContent('main');
  ok(amended.includes('Versie 2') && amended.includes('ontbreekt'), 'the amendment is stored, signatures missing');
  ok(amended.includes('Wijzigingen ten opzichte van de vorige versie'), 'the diff to the previous version');

  // A signature that is not one.
  await page.fill('#sig2', 'not.a.jws');
  await page.locator('#sig2').locator('xpath=ancestor::form').locator('button').click();
  await page.waitForLoadState('load');
  ok((await page.locator('main .error').count()) === 1, 'a bad detached signature is refused with a message');

  // Suspend: a confirmation step with a required reason; then resume.
  r = await page.request.post(`${GW}/console/covenants/drechtsteden-max-ww/suspend`, { form: { reason: 'x', confirm: 'yes' } });
  ok(r.status() === 403, 'suspend without the CSRF token is refused');
  await page.goto(`${GW}/console/covenants/drechtsteden-max-ww/suspend`);
  await axe(page, 'confirm suspend');
  await shot(page, 'confirm');
  await page.fill('#reason', 'Onderzoek naar een datalek bij een partij');
  await page.check('input[name="confirm"]');
  await page.click('main button[type="submit"]');
  await page.waitForLoadState('load');
  ok((await page.textContent('main')).includes('suspended'), 'the covenant is suspended');
  await page.goto(`${GW}/console/covenants/drechtsteden-max-ww/resume`);
  await page.fill('#reason', 'Onderzoek afgerond');
  await page.check('input[name="confirm"]');
  await page.click('main button[type="submit"]');
  await page.waitForLoadState('load');
  ok(!(await page.textContent('main')).includes('Status: suspended'), 'the covenant is resumed');
  await ctx3.close();
} finally {
  await browser.close();
  for (const s of servers) s.close();
}
console.log(`console e2e: ${checks} checks passed`);
