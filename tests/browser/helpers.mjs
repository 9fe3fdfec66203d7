// Shared pieces of the console suite: the environment scripts/browser-test.sh passes, the
// browser, form submission, screenshots, ID numbers and masking.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** Reads a variable the harness must set; fails with the variable's name otherwise. */
function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the suite through scripts/browser-test.sh`);
  }
  return value;
}

/** What the harness hands over (see scripts/browser-test.sh). */
export const env = {
  baseUrl: required('CONSOLE_TEST_BASE_URL'),
  shortIdleUrl: required('CONSOLE_TEST_SHORT_IDLE_URL'),
  shortIdleSecs: Number(process.env.CONSOLE_TEST_SHORT_IDLE_SECS ?? '2'),
  // Whether the servers run with console.secure_cookie on (the session cookie then must
  // be `__Host-`, Secure, Path=/).
  secureCookie: process.env.CONSOLE_TEST_SECURE_COOKIE === '1',
  operator: required('CONSOLE_TEST_OPERATOR'),
  password: required('CONSOLE_TEST_PASSWORD'),
  adminToken: required('CONSOLE_TEST_ADMIN_TOKEN'),
  facesDir: required('CONSOLE_TEST_FACES_DIR'),
  bin: process.env.CONSOLE_TEST_BIN ?? '',
  screenshotsDir: required('CONSOLE_TEST_SCREENSHOTS_DIR'),
  chromium: process.env.CONSOLE_TEST_CHROMIUM || '/usr/bin/chromium',
};

/** A shared photo by its path under the faces folder. */
export const face = (relative) => path.join(env.facesDir, relative);

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** Headless Chromium; the extra flags keep it off the (closed) network. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: env.chromium,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A fresh context (own cookies) on `baseURL`, with a page that records script errors. */
export async function newPage(browser, baseURL) {
  const context = await browser.newContext({
    baseURL,
    viewport: DESKTOP,
    acceptDownloads: true,
    locale: 'zh-CN',
  });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const page = await context.newPage();
  page.scriptErrors = [];
  page.on('pageerror', (error) => page.scriptErrors.push(`${page.url()}: ${error.message}`));
  // The console asks before destructive actions (removal, rotations): the operator in
  // these tests says yes, and the questions are kept for the tests to check.
  page.dialogs = [];
  page.on('dialog', (dialog) => {
    page.dialogs.push(dialog.message());
    dialog.accept();
  });
  return page;
}

/** The path of the page's URL (no origin, no query). */
export const pathOf = (page) => new URL(page.url()).pathname;

/**
 * Clicks the submit button of `form` (a selector or locator) and waits for the navigation
 * it causes. Returns the final response (after redirects) and the first one (the answer
 * to the form itself, e.g. a 303).
 */
export async function submit(page, form) {
  const locator = typeof form === 'string' ? page.locator(form) : form;
  const button = locator.locator('button[type=submit], input[type=submit], button:not([type])').first();
  const [final] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.click()]);
  assert.ok(final, `submitting ${form} navigated nowhere`);
  let first = final.request();
  while (first.redirectedFrom()) first = first.redirectedFrom();
  return { final, first: first === final.request() ? final : await first.response() };
}

/** Follows a link (a selector) and waits for the page it leads to. */
export async function follow(page, selector) {
  const [final] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.locator(selector).first().click(),
  ]);
  return final;
}

/** Signs in through the form; returns the answer to the POST (expected 303) and the final page. */
export async function signIn(page, { operator = env.operator, password = env.password } = {}) {
  const response = await page.goto('/console/sign-in');
  assert.equal(response.status(), 200, `GET /console/sign-in answered ${response.status()}`);
  await page.locator('form#sign-in input[name=operator]').fill(operator);
  await page.locator('form#sign-in input[name=password]').fill(password);
  return submit(page, 'form#sign-in');
}

/**
 * Full-page screenshots of the page as it is now, at desktop (1280×900) and phone
 * (390×844) width: `<name>-desktop.png`, `<name>-phone.png`. The page is not reloaded, so
 * what a POST answered (a secret, a result) stays in the picture. Says (as a diagnostic,
 * not a failure) when the phone layout scrolls sideways.
 */
export async function screenshots(page, name, t) {
  mkdirSync(env.screenshotsDir, { recursive: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: path.join(env.screenshotsDir, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1 && t) t.diagnostic(`${name}: at phone width the page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: path.join(env.screenshotsDir, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

/** The text of `locator`, whitespace collapsed. */
export async function text(locator) {
  return ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

/** Every POST form on the page lacking a non-empty hidden `csrf` input (their ids or actions). */
export async function postFormsWithoutCsrf(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('form')]
      .filter((f) => (f.getAttribute('method') ?? 'get').toLowerCase() === 'post')
      .filter((f) => {
        const input = f.querySelector('input[name=csrf]');
        return !input || input.type !== 'hidden' || !input.value;
      })
      .map((f) => f.id || f.className || f.getAttribute('action') || '(anonymous form)'),
  );
}

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

/** The valid 18-character ID number whose first 17 characters are `id17` (GB 11643). */
export function withCheckChar(id17) {
  assert.match(id17, /^\d{17}$/);
  const sum = [...id17].reduce((acc, digit, i) => acc + Number(digit) * WEIGHTS[i], 0);
  return id17 + CHECK[sum % 11];
}

/** The ID number as the service shows it: province and last two characters (`11**************2X`). */
export const maskId = (id) => id.slice(0, 2) + '*'.repeat(id.length - 4) + id.slice(-2);

/** The name as the service shows it: the first character, then one `*` per other character. */
export const maskName = (name) => {
  const chars = [...name];
  return chars.length === 1 ? '*' : chars[0] + '*'.repeat(chars.length - 1);
};

/** A JSON request to the admin API. */
export async function admin(request, method, url, data) {
  return request.fetch(url, {
    method,
    headers: { Authorization: `Bearer ${env.adminToken}` },
    ...(data === undefined ? {} : { data }),
  });
}
