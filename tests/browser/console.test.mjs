// The operator console (/console) in headless Chromium, against a real `renzheng serve`
// (real SQLite, the real sface engine, real photos). Run by scripts/browser-test.sh, which
// starts the servers and passes their addresses; the tests run in order and build on one
// another (the app created first is granted a package, the person enrolled is tried…).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  admin,
  env,
  face,
  follow,
  launchBrowser,
  maskId,
  maskName,
  newPage,
  pathOf,
  postFormsWithoutCsrf,
  screenshots,
  signIn,
  submit,
  text,
  withCheckChar,
} from './helpers.mjs';

const PAGES = ['overview', 'apps', 'packages', 'calls', 'alerts', 'events', 'registry', 'try', 'about', 'operators'];

// The person: enrolled with one photo, tried with another photo of the same man (the pair
// the API suite uses for result 1 on the sface pack).
const PERSON = {
  name: '胡小明',
  id: withCheckChar('11010519421221003'),
  portrait: face('lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0004.jpg'),
  same: face('lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0008.jpg'),
};
// Refused at enrolment: a photo without a face.
const NO_FACE = {
  name: '马无脸',
  id: withCheckChar('31010419800817004'),
  photo: face('bad_inputs/no_face/skimage_horse.png'),
};

const run = Date.now().toString(36);
const state = {
  appName: `浏览器测试-${run}`,
  appId: null,
  appCode: null,
  signedIn: false,
  totalBefore: null,
  enrolled: false,
  tried: false,
};

/** Fails with a clear message when an earlier test this one builds on did not get there. */
function needs(value, what) {
  assert.ok(value, `this test builds on an earlier one that failed: ${what}`);
  return value;
}

let browser;
let page;

before(async () => {
  browser = await launchBrowser();
  page = await newPage(browser, env.baseUrl);
});

after(async () => {
  await browser?.close();
});

/** The remaining calls of an app in `table#balances` (null when it has no row). */
async function remainingOf(appId) {
  if (pathOf(page) !== '/console/packages') await page.goto('/console/packages');
  const cell = page.locator(`table#balances tr[data-app-id="${appId}"] .remaining`);
  if ((await cell.count()) === 0) return null;
  const value = Number((await text(cell.first())).replace(/[,\s]/g, ''));
  assert.ok(Number.isFinite(value), `table#balances .remaining of ${appId} is not a number`);
  return value;
}

/** Every app's remaining calls in `table#balances`, by app id. */
async function allRemaining() {
  await page.goto('/console/packages');
  const rows = page.locator('table#balances tr[data-app-id]');
  const out = {};
  for (const row of await rows.all()) {
    out[await row.getAttribute('data-app-id')] = await text(row.locator('.remaining'));
  }
  return out;
}

/** The overview's `data-total` (checks in the period) as a number. */
async function overviewTotal() {
  await page.goto('/console/overview');
  const raw = await page.locator('svg#chart-results').getAttribute('data-total');
  assert.ok(raw !== null, 'svg#chart-results has no data-total attribute');
  const total = Number(raw);
  assert.ok(Number.isInteger(total) && total >= 0, `svg#chart-results data-total is not a count: ${raw}`);
  return total;
}

// Not the console yet: tells a broken browser or harness from a broken console.
test('the browser reaches the server', async () => {
  const response = await page.goto('/healthz');
  assert.equal(response.status(), 200, '/healthz did not answer 200 in the browser');
  assert.deepEqual(await response.json(), { status: 'ok' });
  assert.match(await page.locator('body').innerText(), /"status"\s*:\s*"ok"/, 'the page does not show the answer');
});

test('unauthenticated requests are sent to the sign-in page', async (t) => {
  for (const name of PAGES) {
    const response = await page.request.get(`/console/${name}`, { maxRedirects: 0 });
    assert.equal(response.status(), 303, `GET /console/${name} without a session: expected 303`);
    const location = new URL(response.headers()['location'] ?? '', env.baseUrl);
    assert.equal(location.pathname, '/console/sign-in', `GET /console/${name} without a session redirects elsewhere`);
  }
  await page.goto('/console/overview');
  assert.equal(pathOf(page), '/console/sign-in', 'the browser did not land on the sign-in page');
  await page.locator('form#sign-in').waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN', 'the console is not in Chinese by default');
  // Before a session there is no CSRF token: the sign-in form is protected by the
  // same-origin check (a cross-site post is refused) and its cookie by SameSite=Strict.
  assert.deepEqual(await postFormsWithoutCsrf(page), ['sign-in'], 'the sign-in page should have only its own form');
  await screenshots(page, 'sign-in', t);
});

test('sign-in with a wrong password is refused with 401 and an error', async () => {
  const { final } = await signIn(page, { password: `${env.password}-wrong` });
  assert.equal(final.status(), 401, 'a wrong password must answer 401');
  assert.equal(pathOf(page), '/console/sign-in', 'a wrong password left the sign-in page');
  await page.locator('.flash.error').first().waitFor({ state: 'visible' });
  const probe = await page.request.get('/console/overview', { maxRedirects: 0 });
  assert.equal(probe.status(), 303, 'a refused sign-in still gave a session');
});

test('sign-in with the right password opens the overview with a strict session cookie', async () => {
  const cookiesBefore = await page.context().cookies();
  const { first, final } = await signIn(page);
  assert.equal(first.status(), 303, 'a successful sign-in must answer 303');
  assert.equal(
    new URL(first.headers()['location'] ?? '', env.baseUrl).pathname,
    '/console/overview',
    'a successful sign-in must redirect to /console/overview',
  );
  assert.equal(final.status(), 200);
  assert.equal(pathOf(page), '/console/overview');

  const known = new Set(cookiesBefore.map((c) => c.name));
  const added = (await page.context().cookies()).filter((c) => !known.has(c.name));
  assert.ok(added.length > 0, 'signing in set no cookie');
  const session = added.find((c) => /sess|console/i.test(c.name)) ?? (added.length === 1 ? added[0] : null);
  assert.ok(session, `cannot tell the session cookie among ${added.map((c) => c.name).join(', ')}`);
  assert.equal(session.httpOnly, true, `session cookie ${session.name} is not HttpOnly`);
  assert.equal(session.sameSite, 'Strict', `session cookie ${session.name} is not SameSite=Strict`);
  if (env.secureCookie) {
    // The browser stored it: a `__Host-` cookie must be Secure, host-only, with Path=/.
    assert.equal(session.secure, true, `session cookie ${session.name} is not Secure`);
    assert.ok(session.name.startsWith('__Host-'), `session cookie ${session.name} has no __Host- prefix`);
    assert.equal(session.path, '/', `session cookie ${session.name} has path ${session.path}`);
  }
  state.signedIn = true;

  state.totalBefore = await overviewTotal();
});

test('every page is reachable from the navigation and every POST form carries a CSRF token', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/overview');
  for (const name of PAGES) {
    const response = await follow(page, `nav a[data-page="${name}"]`);
    assert.equal(response.status(), 200, `the ${name} page answered ${response.status()}`);
    assert.equal(pathOf(page), `/console/${name}`, `nav a[data-page=${name}] leads elsewhere`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN', `${name}: html[lang] is not zh-CN`);
    for (const selector of ['a#lang-en', 'a#lang-zh', 'form#sign-out']) {
      assert.equal(await page.locator(selector).count(), 1, `${name}: ${selector} missing`);
    }
    assert.deepEqual(await postFormsWithoutCsrf(page), [], `${name}: POST forms without a csrf field`);
  }
});

test('creating an app shows its AppCode, AppKey and AppSecret once', async (t) => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/apps');
  await page.locator('form#create-app input[name=name]').fill(state.appName);
  const { final } = await submit(page, 'form#create-app');
  assert.ok(final.status() < 400, `creating an app answered ${final.status()}`);

  const created = page.locator('#created-secret');
  await created.waitFor({ state: 'visible' });
  const secrets = {};
  for (const field of ['app_code', 'app_key', 'app_secret']) {
    const cell = created.locator(`[data-field=${field}]`);
    assert.equal(await cell.count(), 1, `#created-secret has no [data-field=${field}]`);
    secrets[field] = await text(cell);
    assert.ok(secrets[field].length >= 8, `[data-field=${field}] is empty or too short: "${secrets[field]}"`);
  }
  assert.equal(new Set(Object.values(secrets)).size, 3, 'AppCode, AppKey and AppSecret are not distinct');

  const row = page.locator('table#apps tr[data-app-id]', { hasText: state.appName });
  assert.equal(await row.count(), 1, `table#apps has no row for ${state.appName}`);
  state.appId = await row.getAttribute('data-app-id');
  state.appCode = secrets.app_code;
  await screenshots(page, 'apps', t);

  // The admin API sees the same app.
  const apps = await (await admin(page.request, 'GET', '/admin/apps')).json();
  const listed = apps.data.find((a) => a.app_id === state.appId);
  assert.ok(listed, `the admin API does not list app ${state.appId}`);
  assert.equal(listed.name, state.appName);

  // Never again: neither on a fresh GET nor on a reload of it.
  await page.goto('/console/apps');
  for (const attempt of ['GET /console/apps', 'reload']) {
    if (attempt === 'reload') await page.reload();
    assert.equal(await page.locator('#created-secret').count(), 0, `${attempt} shows #created-secret again`);
    const html = await page.content();
    for (const field of ['app_code', 'app_secret']) {
      assert.ok(!html.includes(secrets[field]), `${attempt} shows the ${field} again`);
    }
  }
});

test('an app can be disabled and enabled again', async () => {
  const appId = needs(state.appId, 'no app was created');
  await page.goto('/console/apps');
  const row = () => page.locator(`table#apps tr[data-app-id="${appId}"]`);
  await submit(page, row().locator('form.disable'));
  assert.equal(await row().locator('form.enable').count(), 1, 'after disabling, the row offers no form.enable');
  let view = (await (await admin(page.request, 'GET', '/admin/apps')).json()).data.find((a) => a.app_id === appId);
  assert.equal(view.enabled, false, 'the admin API says the app is still enabled');
  await submit(page, row().locator('form.enable'));
  assert.equal(await row().locator('form.disable').count(), 1, 'after enabling, the row offers no form.disable');
  view = (await (await admin(page.request, 'GET', '/admin/apps')).json()).data.find((a) => a.app_id === appId);
  assert.equal(view.enabled, true, 'the admin API says the app is still disabled');
});

test('granting the trial package adds 20 calls to the app', async (t) => {
  const appId = needs(state.appId, 'no app was created');
  await page.goto('/console/packages');
  assert.equal(await page.locator('table#packages tr[data-package="trial"]').count(), 1, 'table#packages has no trial row');
  const before = (await remainingOf(appId)) ?? 0;

  await page.locator('form#grant select[name=app_id]').selectOption(appId);
  await page.locator('form#grant select[name=package]').selectOption('trial');
  const { final } = await submit(page, 'form#grant');
  assert.ok(final.status() < 400, `granting answered ${final.status()}`);
  await page.locator('.flash.ok').first().waitFor({ state: 'visible' });

  // Post/Redirect/Get: the page is a GET showing the message once, naming the app.
  assert.equal(pathOf(page), '/console/packages', 'the grant did not lead back to the packages page');
  assert.ok(new URL(page.url()).searchParams.has('flash'), 'the grant did not redirect with a one-time message');
  assert.ok((await text(page.locator('.flash.ok').first())).includes(state.appName), 'the message does not name the app');
  const after = await remainingOf(appId);
  assert.notEqual(after, null, `table#balances has no row for app ${appId} after the grant`);
  assert.equal(after - before, 20, `remaining went from ${before} to ${after}, expected +20`);
  // A reload repeats the GET, not the grant, and the message is not shown again.
  await page.reload();
  assert.equal(await page.locator('.flash.ok').count(), 0, 'a reload showed the message again');
  assert.equal(await remainingOf(appId), after, 'a reload granted the package again');
  const balance = await (await admin(page.request, 'GET', `/admin/apps/${appId}/balance`)).json();
  assert.equal(balance.data.remaining, after, 'the admin API disagrees with table#balances');
  await screenshots(page, 'packages', t);
});

test("on the app's page a grant is adjusted, then revoked after a confirmation", async (t) => {
  const appId = needs(state.appId, 'no app was created');
  // A grant of its own, so the trial's calls stay for the tests after this one.
  await page.goto(`/console/apps/${appId}`);
  await page.locator('form#grant-calls input[name=calls]').fill('30');
  await submit(page, 'form#grant-calls');
  await page.locator('.flash.ok').first().waitFor({ state: 'visible' });
  const before = await remainingOf(appId);
  await page.goto(`/console/apps/${appId}`);
  // The newest grant is the one just made.
  const ids = await page.locator('table#grants tr[data-grant]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.grant)));
  assert.ok(ids.length > 0, 'table#grants has no rows');
  const grant = String(Math.max(...ids));
  const mine = page.locator(`table#grants tr[data-grant="${grant}"]`);

  // Adjusted down to 12 calls.
  await mine.locator('form.adjust-grant input[name=calls]').fill('12');
  await submit(page, mine.locator('form.adjust-grant'));
  await page.locator('.flash.ok').first().waitFor({ state: 'visible' });
  assert.equal(await remainingOf(appId), before - 18, 'adjusting to 12 calls did not take 18 back');

  // Revoked: the browser asks first, then the 12 calls are gone and the row says so.
  await page.goto(`/console/apps/${appId}`);
  const asked = page.dialogs.length;
  await submit(page, mine.locator('form.revoke-grant'));
  assert.equal(page.dialogs.length, asked + 1, 'revoking did not ask for a confirmation');
  await page.locator('.flash.ok').first().waitFor({ state: 'visible' });
  await screenshots(page, 'app-grant-revoked', t);
  assert.ok(await mine.getAttribute('data-revoked') !== null, 'the revoked grant is not marked');
  assert.equal(await mine.locator('form.revoke-grant').count(), 0, 'a revoked grant still offers a revoke form');
  assert.equal(await remainingOf(appId), before - 30, 'revoking did not take the 12 calls back');
});

test('a package can be added', async () => {
  needs(state.signedIn, 'signing in failed');
  const name = `browser_${run}`;
  await page.goto('/console/packages');
  const form = page.locator('form#put-package');
  await form.locator('input[name=name]').fill(name);
  await form.locator('input[name=calls]').fill('500');
  await form.locator('input[name=price_yuan]').fill('9.90');
  await form.locator('input[name=valid_days]').fill('30');
  const { final } = await submit(page, form);
  assert.ok(final.status() < 400, `adding a package answered ${final.status()}`);
  const error = page.locator('.flash.error');
  assert.equal(await error.count(), 0, `adding a package failed: ${(await error.count()) ? await text(error.first()) : ''}`);
  await page.goto('/console/packages');
  assert.equal(await page.locator(`table#packages tr[data-package="${name}"]`).count(), 1, `table#packages has no row ${name}`);
});

test('the browser checks a package code by its pattern, and a refused form keeps what was typed', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/packages');
  const form = page.locator('form#put-package');
  const code = form.locator('input[name=name]');
  // A pattern Chromium cannot compile (under the v flag) turns its check off silently.
  for (const [value, valid] of [['good-code_1', true], ['bad code!', false], ['中文', false]]) {
    await code.fill(value);
    assert.equal(await code.evaluate((el) => el.checkValidity()), valid, `checkValidity("${value}")`);
  }
  // A form the server refuses (here: a price with three decimals) comes back as typed.
  await code.fill(`kept_${run}`);
  await form.locator('input[name=calls]').fill('7');
  await form.locator('input[name=price_yuan]').fill('1.234');
  await submit(page, form);
  await page.locator('.flash.error').first().waitFor({ state: 'visible' });
  assert.equal(await page.locator('form#put-package input[name=name]').inputValue(), `kept_${run}`);
  assert.equal(await page.locator('form#put-package input[name=price_yuan]').inputValue(), '1.234');
  assert.equal(await page.locator(`table#packages tr[data-package="kept_${run}"]`).count(), 0, 'a refused package was stored');
});

test('keyboard: the skip link is the first stop and leads to the content', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/apps');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip', 'the first Tab stop is not the skip link');
  assert.ok(await page.locator('a.skip').isVisible(), 'the focused skip link is not visible');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement?.id === 'main');
  // Keyboard only: Tab from the content reaches the create form's name, type, Enter.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'name', 'Tab from the content does not reach the create form');
  await page.keyboard.type(`键盘-${run}`);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')]);
  assert.equal(await page.locator('#created-secret').count(), 1, 'creating an app by keyboard showed no secrets');
  const icon = await page.request.get('/favicon.ico');
  assert.equal(icon.status(), 200, '/favicon.ico');
});

test('on a phone the apps table needs no sideways scrolling to reach its actions', async () => {
  needs(state.appId, 'no app was created');
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await page.goto('/console/apps');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 391, `the apps page is ${wide} px wide on a 390 px phone`);
    const button = page.locator(`table#apps tr[data-app-id="${state.appId}"] form.reset-code button`);
    const box = await button.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the reset button is off screen: ${JSON.stringify(box)}`);
  } finally {
    await page.setViewportSize(size);
  }
});

test('enrolling a person with one photo through the registry page', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/registry');
  const form = page.locator('form#enrol');
  await form.locator('input[name=name]').fill(PERSON.name);
  await form.locator('input[name=id_number]').fill(PERSON.id);
  await form.locator('input[name=photo]').setInputFiles([PERSON.portrait]);
  await form.locator('select[name=basis]').selectOption('consent');
  await form.locator('input[name=consent_ref]').fill('CF-2026-0600');
  const { final } = await submit(page, form);
  assert.ok(final.status() < 400, `enrolling answered ${final.status()}`);
  const error = page.locator('.flash.error');
  assert.equal(await error.count(), 0, `enrolling was refused: ${(await error.count()) ? await text(error.first()) : ''}`);
  await page.locator('.flash.ok').first().waitFor({ state: 'visible' });
  assert.ok(!page.url().includes(PERSON.id), 'the ID number went into the URL');

  const shown = await admin(page.request, 'POST', '/admin/persons/lookup', { idCard: PERSON.id });
  assert.equal(shown.status(), 200, 'the admin API does not find the enrolled person');
  const person = (await shown.json()).data;
  assert.equal(person.portraits.length, 1, 'the person was not enrolled with exactly one portrait');
  assert.equal(person.basis?.basis, 'consent', 'the legal basis chosen in the form was not recorded');
  assert.equal(person.basis?.reference, 'CF-2026-0600', 'the consent reference typed in the form was not recorded');
  state.enrolled = true;
});

test('enrolling with a photo without a face is refused, saying why', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/registry');
  const form = page.locator('form#enrol');
  await form.locator('input[name=name]').fill(NO_FACE.name);
  await form.locator('input[name=id_number]').fill(NO_FACE.id);
  await form.locator('input[name=photo]').setInputFiles([NO_FACE.photo]);
  await form.locator('select[name=basis]').selectOption('law');
  await form.locator('input[name=law]').fill('反恐怖主义法 第二十一条');
  await submit(page, form);
  const error = page.locator('.flash.error').first();
  await error.waitFor({ state: 'visible' });
  const why = `${await text(error)} ${(await error.getAttribute('data-reason')) ?? ''}`;
  assert.match(why, /face|脸/i, `the refusal does not say that no face was found: "${why}"`);
  assert.equal(await page.locator('.flash.ok').count(), 0, 'a refused enrolment also shows .flash.ok');
  const shown = await admin(page.request, 'POST', '/admin/persons/lookup', { idCard: NO_FACE.id });
  assert.equal(shown.status(), 404, 'a refused enrolment wrote the person anyway');
});

test('looking a person up shows them masked', async (t) => {
  needs(state.enrolled, 'the person was not enrolled');
  await page.goto('/console/registry');
  await page.locator('form#lookup input[name=id_number]').fill(PERSON.id);
  await submit(page, 'form#lookup');
  assert.ok(!page.url().includes(PERSON.id), 'the ID number went into the URL');
  const person = page.locator('#person');
  await person.waitFor({ state: 'visible' });
  const shown = await text(person);
  assert.ok(shown.includes(maskId(PERSON.id)), `#person does not show the masked ID ${maskId(PERSON.id)}: "${shown}"`);
  assert.ok(shown.includes(maskName(PERSON.name)), `#person does not show the masked name ${maskName(PERSON.name)}: "${shown}"`);
  assert.ok(!shown.includes(PERSON.id), '#person shows the full ID number');
  assert.ok(!shown.includes(PERSON.name), '#person shows the full name');
  assert.ok(!(await page.content()).includes(PERSON.id), 'the page source holds the full ID number');
  const counter = page.locator('#person[data-portraits], #person [data-portraits]').first();
  assert.equal(await counter.getAttribute('data-portraits'), '1', '#person [data-portraits] is not 1');
  await screenshots(page, 'registry', t);
});

test('try it: another photo of the same person gives result 1, drawn over the photo', async (t) => {
  needs(state.enrolled, 'the person was not enrolled');
  const balancesBefore = await allRemaining();

  await page.goto('/console/try');
  const form = page.locator('form#try');
  await form.locator('input[name=name]').fill(PERSON.name);
  await form.locator('input[name=id_number]').fill(PERSON.id);
  await form.locator('input[name=photo]').setInputFiles(PERSON.same);
  const { final } = await submit(page, form);
  assert.ok(final.status() < 400, `try it answered ${final.status()}`);
  assert.ok(!page.url().includes(PERSON.id), 'the ID number went into the URL');

  await page.locator('#try-result').waitFor({ state: 'visible' });
  const raw = await page.locator('#try-result pre#try-json').textContent();
  let answer;
  assert.doesNotThrow(() => (answer = JSON.parse(raw)), `pre#try-json is not JSON: ${raw}`);
  assert.equal(answer.code, 200, `the answer's code is not 200: ${raw}`);
  assert.equal(answer.data?.result, 1, `expected result 1 (same person): ${raw}`);

  const overlay = page.locator('#try-result svg#try-overlay');
  assert.equal(await overlay.count(), 1, 'no svg#try-overlay');
  const box = await overlay.locator('rect#face-box').evaluate((r) => {
    const b = r.getBBox();
    return { width: b.width, height: b.height };
  });
  assert.ok(box.width > 0 && box.height > 0, `rect#face-box has no area: ${JSON.stringify(box)}`);
  assert.equal(await overlay.locator('circle.landmark').count(), 5, 'the overlay does not show five landmarks');
  const score = await text(page.locator('#try-score'));
  assert.match(score, /\d/, `#try-score shows no score: "${score}"`);
  await screenshots(page, 'try', t);
  state.tried = true;

  assert.deepEqual(await allRemaining(), balancesBefore, 'a try-it check was charged to an app');
});

test('try it: comparing two photos shows their similarity', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/try');
  const form = page.locator('form#compare');
  await form.locator('input[name=photo_a]').setInputFiles(PERSON.portrait);
  await form.locator('input[name=photo_b]').setInputFiles(PERSON.same);
  const { final } = await submit(page, form);
  assert.ok(final.status() < 400, `compare answered ${final.status()}`);
  const result = page.locator('#try-result');
  await result.waitFor({ state: 'visible' });
  assert.match(await text(result), /\d/, 'the comparison shows no similarity');
});

test('the AppCode the console showed works against the API and is charged', async () => {
  const appId = needs(state.appId, 'no app was created');
  const appCode = needs(state.appCode, 'no AppCode was shown');
  needs(state.enrolled, 'the person was not enrolled');
  const before = await remainingOf(appId);
  const image = (await readFile(PERSON.same)).toString('base64');
  const response = await page.request.post('/faceidcard/check', {
    headers: { Authorization: `APPCODE ${appCode}` },
    data: { name: PERSON.name, idCard: PERSON.id, image },
  });
  const body = await response.text();
  assert.equal(response.status(), 200, `the check answered ${response.status()}: ${body}`);
  assert.equal(JSON.parse(body).data.result, 1, `expected result 1: ${body}`);
  await page.goto('/console/packages');
  assert.equal(await remainingOf(appId), before - 1, 'a check through the API was not charged one call');
});

test('the call history shows the check, masked, and filters by result', async (t) => {
  needs(state.tried, 'the try-it check did not run');
  await page.goto('/console/calls');
  const rows = page.locator('table#calls tbody tr');
  assert.ok((await rows.count()) > 0, 'table#calls has no rows');
  const ours = rows.filter({ has: page.locator('td.id-card', { hasText: maskId(PERSON.id) }) });
  assert.ok((await ours.count()) > 0, `no row of table#calls shows ${maskId(PERSON.id)}`);
  for (const row of await ours.all()) {
    assert.match(await text(row.locator('td.result')), /^1(\D|$)/, 'a check of the person does not show result 1');
    const name = await text(row.locator('td.name'));
    assert.ok(name.includes(maskName(PERSON.name)), `td.name is not the masked name ${maskName(PERSON.name)}: "${name}"`);
  }
  const html = await page.content();
  assert.ok(!html.includes(PERSON.id), 'the call history holds the full ID number');
  assert.ok(!html.includes(PERSON.name), 'the call history holds the full name');
  await screenshots(page, 'calls', t);

  await page.locator('form#call-filter select[name=result]').selectOption('1');
  await submit(page, 'form#call-filter');
  assert.equal(new URL(page.url()).searchParams.get('result'), '1', 'the filter is not a GET with result=1');
  const filtered = page.locator('table#calls tbody tr');
  assert.ok((await filtered.count()) > 0, 'filtering by result 1 shows no rows');
  for (const row of await filtered.all()) {
    assert.match(await text(row.locator('td.result')), /^1(\D|$)/, 'filtering by result 1 shows another result');
  }
});

test('the CSV export downloads the history with a header line, masked', async () => {
  needs(state.tried, 'the try-it check did not run');
  await page.goto('/console/calls');
  const link = page.locator('a#export-csv');
  const href = await link.getAttribute('href');
  assert.ok(href, 'a#export-csv has no href');
  assert.equal(new URL(href, env.baseUrl).pathname, '/console/calls.csv', `a#export-csv points at ${href}`);

  const response = await page.request.get(href);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-disposition'] ?? '', /attachment/i, 'the CSV is not sent as an attachment');

  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const csv = (await readFile(await download.path(), 'utf8')).replace(/^\uFEFF/, '');
  const lines = csv.split(/\r?\n/).filter((l) => l.length > 0);
  assert.ok(lines.length >= 2, `the CSV has no data line: ${csv.slice(0, 200)}`);
  assert.ok(lines[0].includes(','), `the first line is not a header: ${lines[0]}`);
  assert.ok(!/\*/.test(lines[0]), `the first line looks like data, not a header: ${lines[0]}`);
  assert.ok(csv.includes(maskId(PERSON.id)), `the CSV does not hold ${maskId(PERSON.id)}`);
  assert.ok(!csv.includes(PERSON.id), 'the CSV holds the full ID number');
  assert.ok(!csv.includes(PERSON.name), 'the CSV holds the full name');
});

test('the overview counts the checks', async (t) => {
  needs(state.totalBefore !== null && state.tried, 'no total before, or the try-it check did not run');
  const total = await overviewTotal();
  assert.ok(total > state.totalBefore, `svg#chart-results data-total is ${total}, was ${state.totalBefore} before the checks`);
  assert.equal(await page.locator('svg#chart-status').count(), 1, 'no svg#chart-status');
  assert.match(await text(page.locator('#latency')), /\d/, '#latency shows no figure');
  if (state.appId) {
    assert.equal(await page.locator(`table#quota tr[data-app-id="${state.appId}"]`).count(), 1, 'table#quota has no row for the app');
  }
  await screenshots(page, 'overview', t);
});

test('removing a person needs the confirmation tick', async () => {
  needs(state.enrolled, 'the person was not enrolled');
  await page.goto('/console/registry');
  const form = page.locator('form#remove');
  await form.locator('input[name=id_number]').fill(PERSON.id);
  await form.locator('input[name=confirm]').uncheck();
  // Skip the browser's own validation (a `required` tick) to see that the server refuses.
  await form.evaluate((f) => {
    f.noValidate = true;
  });
  await submit(page, form);
  await page.locator('.flash.error').first().waitFor({ state: 'visible' });
  let shown = await admin(page.request, 'POST', '/admin/persons/lookup', { idCard: PERSON.id });
  assert.equal(shown.status(), 200, 'the person was removed without the confirmation tick');

  await page.goto('/console/registry');
  await form.locator('input[name=id_number]').fill(PERSON.id);
  await form.locator('input[name=confirm]').check();
  const asked = page.dialogs.length;
  await submit(page, form);
  await page.locator('.flash.ok').first().waitFor({ state: 'visible' });
  assert.ok(page.dialogs.length > asked, 'the removal did not ask for a confirmation');
  assert.ok(!page.url().includes(PERSON.id), 'the ID number went into the URL');
  shown = await admin(page.request, 'POST', '/admin/persons/lookup', { idCard: PERSON.id });
  assert.equal(shown.status(), 404, 'the person is still in the registry');

  await page.goto('/console/registry');
  await page.locator('form#lookup input[name=id_number]').fill(PERSON.id);
  await submit(page, 'form#lookup');
  assert.equal(await page.locator('#person').count(), 0, 'the removed person is still shown');
});

test('a POST without the right CSRF token is refused with 403', async () => {
  needs(state.signedIn, 'signing in failed');
  const name = `csrf-probe-${run}`;
  const wrong = await page.request.post('/console/apps', { form: { name, csrf: 'wrong' }, maxRedirects: 0 });
  assert.equal(wrong.status(), 403, `a wrong csrf token answered ${wrong.status()}`);
  const missing = await page.request.post('/console/apps', { form: { name }, maxRedirects: 0 });
  assert.equal(missing.status(), 403, `a missing csrf token answered ${missing.status()}`);
  await page.goto('/console/apps');
  assert.equal(await page.locator('table#apps tr', { hasText: name }).count(), 0, 'a refused POST created the app');
});

test('the about page shows the model pack, the configuration and health', async (t) => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/about');
  const ready = await (await page.request.get('/readyz')).json();
  const pack = await text(page.locator('#model-pack'));
  assert.ok(pack.includes(ready.model_id), `#model-pack does not name the loaded model ${ready.model_id}: "${pack}"`);
  for (const selector of ['#config', '#health']) {
    assert.ok((await text(page.locator(selector))).length > 0, `${selector} is empty`);
  }
  assert.ok(!(await page.content()).includes(env.adminToken), 'the about page shows the admin token');
  await screenshots(page, 'about', t);
});

test('switching the language to English and back', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/overview');
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  await follow(page, 'a#lang-en');
  assert.equal(pathOf(page), '/console/overview', 'choosing English did not come back to the page');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en', 'html[lang] is not en after choosing English');
  await page.goto('/console/apps');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en', 'English is not kept on the next page');
  await follow(page, 'a#lang-zh');
  assert.equal(pathOf(page), '/console/apps', 'choosing Chinese did not come back to the page');
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN', 'html[lang] is not zh-CN after choosing Chinese');
});

test('an owner adds an auditor, who sees only what the role opens and changes their own password', async (t) => {
  needs(state.signedIn, 'signing in failed');
  const name = `审计-${run}`;
  const first = 'auditor password one';
  const second = 'auditor password two';
  await page.goto('/console/operators');
  await page.locator('form#add-operator input[name=name]').fill(name);
  await page.locator('form#add-operator select[name=role]').selectOption('auditor');
  await page.locator('form#add-operator input[name=password]').fill(first);
  await submit(page, 'form#add-operator');
  assert.equal(pathOf(page), '/console/operators', 'adding an operator did not come back to the page');
  const row = page.locator(`table#operators tr[data-operator="${name}"]`);
  assert.equal(await row.getAttribute('data-role'), 'auditor', 'the new operator is not listed as an auditor');
  await screenshots(page, 'operators', t);

  const auditor = await newPage(browser, env.baseUrl);
  try {
    await signIn(auditor, { operator: name, password: first });
    assert.equal(pathOf(auditor), '/console/overview', 'the auditor could not sign in');
    const nav = await auditor.locator('nav a[data-page]').evaluateAll((links) => links.map((a) => a.dataset.page));
    assert.deepEqual(nav, ['overview', 'apps', 'packages', 'calls', 'alerts', 'events', 'about'], 'an auditor\'s navigation');
    await auditor.goto('/console/apps');
    assert.equal(await auditor.locator('form#create-app').count(), 0, 'an auditor is offered the create form');
    assert.equal(await auditor.locator('table#apps form').count(), 0, 'an auditor is offered app actions');
    const refused = await auditor.goto('/console/registry');
    assert.equal(refused.status(), 403, 'an auditor opened the registry');
    await auditor.locator('.flash.error[data-reason=role]').waitFor({ state: 'visible' });
    await screenshots(auditor, 'role-refused', t);
    // Their own password, with the current one; the page says so and they stay signed in.
    await auditor.goto('/console/account');
    assert.equal(await auditor.locator('#role').getAttribute('data-role'), 'auditor');
    await auditor.locator('form#change-password input[name=current]').fill(first);
    await auditor.locator('form#change-password input[name=new]').fill(second);
    await auditor.locator('form#change-password input[name=repeat]').fill(second);
    await submit(auditor, 'form#change-password');
    assert.equal(pathOf(auditor), '/console/account', 'changing the password did not come back to the account page');
    await auditor.locator('.flash.ok').waitFor({ state: 'visible' });
    await screenshots(auditor, 'account', t);
    assert.deepEqual(auditor.scriptErrors, [], 'script errors in the auditor\'s pages');
  } finally {
    await auditor.context().close();
  }
  const again = await newPage(browser, env.baseUrl);
  try {
    const { first: answer } = await signIn(again, { operator: name, password: first });
    assert.equal(answer.status(), 401, 'the old password still signs in');
    await signIn(again, { operator: name, password: second });
    assert.equal(pathOf(again), '/console/overview', 'the new password does not sign in');
  } finally {
    await again.context().close();
  }
  // The owner removes them (the page's handler accepts the confirmation).
  await page.goto('/console/operators');
  await submit(page, page.locator(`table#operators tr[data-operator="${name}"] form.remove`));
  assert.equal(await page.locator(`table#operators tr[data-operator="${name}"]`).count(), 0, 'the operator is still listed');
});

/**
 * The code an authenticator app shows for a base32 `secret`, `offset` 30-second steps
 * from now (RFC 6238: HMAC-SHA1, 6 digits), computed here independently of the server.
 */
function totp(secret, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = [];
  let bits = 0;
  let value = 0;
  for (const c of secret.replace(/[\s=]/g, '').toUpperCase()) {
    value = ((value << 5) | alphabet.indexOf(c)) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const h = createHmac('sha1', Buffer.from(bytes)).update(counter).digest();
  const o = h[19] & 15;
  const n = (((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1000000;
  return String(n).padStart(6, '0');
}

test('two-step sign-in: set up from a QR code, asked at sign-in, turned off by an owner', async (t) => {
  needs(state.signedIn, 'signing in failed');
  const name = `两步-${run}`;
  const password = 'two-step operator password';
  await page.goto('/console/operators');
  await page.locator('form#add-operator input[name=name]').fill(name);
  await page.locator('form#add-operator select[name=role]').selectOption('admin');
  await page.locator('form#add-operator input[name=password]').fill(password);
  await submit(page, 'form#add-operator');

  const ops = await newPage(browser, env.baseUrl);
  let secret;
  try {
    await signIn(ops, { operator: name, password });
    await ops.goto('/console/account');
    await submit(ops, 'form#two-step-start');
    await ops.locator('#two-step-setup svg').waitFor({ state: 'visible' });
    secret = await ops.locator('#two-step-secret').getAttribute('data-secret');
    assert.match(secret ?? '', /^[A-Z2-7]{32}$/, 'the setup shows no base32 key');
    await screenshots(ops, 'account-two-step', t);
    await ops.locator('form#two-step-confirm input[name=code]').fill(totp(secret));
    await submit(ops, 'form#two-step-confirm');
    await ops.locator('.flash.ok').waitFor({ state: 'visible' });
    assert.equal(await ops.locator('#two-step').getAttribute('data-on'), 'true', 'two-step sign-in is not on');
    assert.equal(await ops.locator('#two-step-secret').count(), 0, 'the key is still shown');
  } finally {
    await ops.context().close();
  }

  const later = await newPage(browser, env.baseUrl);
  try {
    const { first: refused } = await signIn(later, { operator: name, password });
    assert.equal(refused.status(), 401, 'the password alone signed in');
    await later.locator('form#sign-in input[name=operator]').fill(name);
    await later.locator('form#sign-in input[name=password]').fill(password);
    await later.locator('form#sign-in input[name=code]').fill(totp(secret, 1));
    await submit(later, 'form#sign-in');
    assert.equal(pathOf(later), '/console/overview', 'the password and a current code did not sign in');
  } finally {
    await later.context().close();
  }

  // The owner turns it off for them (a lost phone), then removes them.
  await page.goto('/console/operators');
  const row = page.locator(`table#operators tr[data-operator="${name}"]`);
  assert.equal(await row.locator('td.two-step').getAttribute('data-on'), 'true', 'the operators page does not show two-step on');
  await submit(page, row.locator('form.reset-two-step'));
  assert.equal(await row.locator('td.two-step').getAttribute('data-on'), 'false', 'the owner could not turn it off');
  await submit(page, row.locator('form.remove'));
});

test('signing out ends the session', async () => {
  needs(state.signedIn, 'signing in failed');
  await page.goto('/console/overview');
  await submit(page, 'form#sign-out');
  assert.equal(pathOf(page), '/console/sign-in', 'signing out did not lead to the sign-in page');
  const probe = await page.request.get('/console/overview', { maxRedirects: 0 });
  assert.equal(probe.status(), 303, 'the session still works after signing out');
});

test('an idle session expires (server with a 2 s idle limit)', async () => {
  const short = await newPage(browser, env.shortIdleUrl);
  try {
    const { first } = await signIn(short);
    assert.equal(first.status(), 303, 'signing in to the short-idle server failed');
    assert.equal(pathOf(short), '/console/overview');
    await new Promise((resolve) => setTimeout(resolve, (env.shortIdleSecs + 1.5) * 1000));
    await short.goto('/console/apps');
    assert.equal(pathOf(short), '/console/sign-in', 'an idle session still opens the console');
    await short.locator('.flash.error[data-reason=expired]').waitFor({ state: 'visible' });
    // Signing in again leads back to the page asked for.
    await short.locator('form#sign-in input[name=operator]').fill(env.operator);
    await short.locator('form#sign-in input[name=password]').fill(env.password);
    await submit(short, 'form#sign-in');
    assert.equal(pathOf(short), '/console/apps', 'sign-in did not lead back to the page asked for');
    assert.deepEqual(short.scriptErrors, [], 'script errors on the short-idle server');
  } finally {
    await short.context().close();
  }
});

test('no page raised a script error', () => {
  assert.deepEqual(page.scriptErrors, []);
});
