'use strict';
// The chat page of build/chat-server in two headless Chromium pages: each loads the page
// from the server's own HTTP handler, joins with a name, and they talk; then one leaves.
//
//   node browser_chat.js PAGE_URL SCREENSHOT_PATH [SPKI_SHA256_BASE64]
//
// With an https:// PAGE_URL the browser trusts exactly the server certificate whose public
// key hash is given (Chromium's --ignore-certificate-errors-spki-list), nothing else.
// Prints one JSON line {"result": {...}} with what each page showed, or {"error": "..."};
// exits 0 when the scenario ran to its end.
const fs = require('fs');

const [pageUrl, screenshot, spki] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 10000;

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// The lines of the page's chat log.
const logLines = (page) => page.$$eval('#log div', (divs) => divs.map((d) => d.textContent));

async function waitForLine(page, line) {
  await page.waitForFunction(
    (want) => Array.from(document.querySelectorAll('#log div')).some((d) => d.textContent === want),
    line,
    { timeout: STEP_MS },
  ).catch(async () => {
    throw new Error(`page never showed ${JSON.stringify(line)}; it showed ${JSON.stringify(await logLines(page))}`);
  });
}

async function join(browser, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.goto(pageUrl, { timeout: STEP_MS });
  await page.fill('#name', name);
  await page.click('#join button');
  await waitForLine(page, 'connected');
  await waitForLine(page, `${name} joined`);
  return { page, context, consoleErrors };
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#say button');
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: run \`make interop-browser\``);
  const { chromium } = require('playwright-core');
  const args = ['--no-sandbox'];
  if (spki) args.push(`--ignore-certificate-errors-spki-list=${spki}`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  try {
    const alice = await join(browser, 'alice');
    const bob = await join(browser, 'bob');
    await waitForLine(alice.page, 'bob joined');
    await say(alice.page, 'hello bob');
    await waitForLine(bob.page, 'alice: hello bob');
    await waitForLine(alice.page, 'alice: hello bob');
    await say(bob.page, 'hi alice, bye');
    await waitForLine(alice.page, 'bob: hi alice, bye');
    // The room's line reaches both pages; bob's may render after alice's.
    await waitForLine(bob.page, 'bob: hi alice, bye');
    const bobLines = await logLines(bob.page);
    const scheme = await bob.page.evaluate(() => location.protocol);
    await bob.context.close(); // bob closes his tab
    await waitForLine(alice.page, 'bob left');
    await alice.page.screenshot({ path: screenshot, fullPage: true });
    const aliceLines = await logLines(alice.page);
    await alice.context.close();
    emit({
      result: {
        scheme,
        alice: aliceLines,
        bob: bobLines,
        consoleErrors: [...alice.consoleErrors, ...bob.consoleErrors],
      },
    });
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => { emit({ error: String(e && e.stack || e) }); process.exit(1); },
);
