/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core (never a
 * downloaded browser). The page loads with ?token=, shows the backends, shows a promotion
 * within seconds of a crash, runs without a CSP violation, and fits a narrow window.
 * Screenshots go to test/artifacts/ for a person to look at.
 */
import { accessSync, chmodSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import t from 'tap';
import { adminRequest } from '../helpers/admin.js';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { steadyLoad } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy, waitFor } from '../helpers/harness.js';
import { closeAll, owned, stopLoad, stopProxy } from '../helpers/owned.js';

const CHROMIUM = '/usr/bin/chromium';

/**
 * What to do when the browser is missing, in one line. `npm test` installs it first when it can
 * (scripts/ensure-chromium.sh: root with apt-get); elsewhere this line is the test's failure.
 */
const NO_CHROMIUM = `the dashboard browser test needs Debian's chromium at ${CHROMIUM}: install it as root with 'apt-get install chromium'`;

function chromiumPresent(): boolean {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Chromium at the lowest CPU priority: its start-up saturates both cores for a second or two,
 * and the test file running beside this one (tap runs two) has timing of its own to keep.
 * `exec` keeps the pid playwright watches.
 */
function niceChromium(): string {
  const wrapper = join(tmpdir(), 'hotwarm-test-chromium.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec nice -n 19 ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const TOKEN = 'dash-board-token';

t.test('dashboard: backends, live promotion after a crash, no CSP errors, narrow window', async (t) => {
  if (!chromiumPresent()) {
    t.fail(NO_CHROMIUM);
    return;
  }
  const leaks = leakCheck();
  const own = owned(t);
  mkdirSync(ARTIFACTS, { recursive: true });
  const backends = own((await startBackends(['app-1', 'app-2', 'app-3', 'spare-1', 'spare-2'], { latencyMs: 60 })) as TestBackend[], closeAll);
  const [app1] = backends as [TestBackend];
  // A second pool with automatic failback, to show the hold still to run after a recovery.
  const [api1, apiSpare] = own((await startBackends(['api-1', 'api-spare'])) as [TestBackend, TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(
    {
      log: { level: 'debug' },
      shutdown_timeout: '1s',
      admin: { listen: '127.0.0.1:0', token_env: 'DASH_TOKEN' },
      listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
      pools: {
        app: {
          health_check: { ...FAST_CHECKS, fall: 2 },
          connect_timeout: '200ms',
          response_timeout: '2s',
          // A ramp far longer than the test, so the warm is still ramping whenever the page is read.
          failover: { failback: 'manual', slow_start: '60s' },
          backends: backends.map((b, i) => ({ name: b.name, address: b.address, weight: i === 0 ? 2 : 1, role: b.name.startsWith('spare') ? 'warm' : 'hot' })),
        },
        api: {
          health_check: { ...FAST_CHECKS, fall: 2 },
          failover: { failback: 'auto', failback_hold: '50s' },
          backends: [
            { name: 'api-1', address: api1.address },
            { name: 'api-spare', address: apiSpare.address, role: 'warm' },
          ],
        },
      },
    },
    { env: { DASH_TOKEN: TOKEN }, file },
  ), stopProxy);
  const base = `http://127.0.0.1:${h.adminPort()}`;
  const traffic = own(steadyLoad(h.port(), 6, { pauseMs: 5 }), stopLoad);
  const browser: Browser = own(
    await chromium.launch({
      executablePath: niceChromium(),
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
    (b) => b.close(),
  );
  {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));

    await page.goto(`${base}/?token=${TOKEN}`);
    await page.waitForSelector('[data-backend="app-1"][data-state="serving"]', { timeout: 5_000 });
    await page.waitForSelector('#conn.live', { timeout: 5_000 });
    t.notMatch(page.url(), 'token', 'the token is taken out of the address bar');
    // Page-side code as strings: the test project has no DOM types.
    const cards = await page.evaluate<string[][]>("[...document.querySelectorAll('[data-backend]')].map((e) => [e.dataset.backend, e.dataset.state])");
    t.strictSame(cards, [['app-1', 'serving'], ['app-2', 'serving'], ['app-3', 'serving'], ['spare-1', 'standby'], ['spare-2', 'standby'], ['api-1', 'serving'], ['api-spare', 'standby']]);
    await page.waitForSelector('li[data-type="listening"]', { timeout: 3_000 });
    t.equal(await page.getAttribute('.pool-head [data-capacity]', 'data-capacity'), '100', 'full capacity');

    // Traffic flows before the crash (the load's replies, not a fixed time).
    const before = traffic.replies.length;
    await waitFor(() => traffic.replies.length >= before + 20, undefined, 'traffic before the crash');
    const crashed = Date.now();
    await app1.kill();
    // Pushed live: the promotion appears without a reload of the page (bounds generous for a loaded machine).
    await page.waitForSelector('[data-backend="spare-1"][data-state="serving"]', { timeout: 30_000 });
    await page.waitForSelector('li[data-type="promoted"]', { timeout: 30_000 });
    t.comment(`promotion shown ${Date.now() - crashed} ms after the crash`);
    t.match(await page.textContent('[data-backend="spare-1"]'), 'covers app-1');
    t.match(await page.textContent('[data-backend="app-1"]'), 'covered by spare-1');
    t.match(await page.getAttribute('[data-backend="app-1"]', 'data-state'), 'down');
    t.match(await page.textContent('li[data-type="promoted"]'), 'spare-1 promoted, covers app-1');
    t.match(await page.textContent('li[data-type="backend_down"]'), 'app-1 is down');
    // A status poll with the warm under load and ramping: the page's next /status, rendered.
    await page.waitForResponse((response) => new URL(response.url()).pathname === '/status', { timeout: 30_000 });
    await page.waitForSelector('[data-backend="spare-1"][data-state="serving"]', { timeout: 30_000 });
    // app-1 (weight 2) is covered by spare-1 (weight 1) still ramping: at most (1 + 1 + 1) / 4 of the hot weight.
    const capacity = Number(await page.getAttribute('.pool-head [data-capacity]', 'data-capacity'));
    t.ok(capacity >= 50 && capacity < 75, `capacity shown honestly while the warm ramps: ${capacity}%`);

    // How long a backend has been down; the per-backend chart of the last minutes (sampled every 2 s).
    t.match(await page.textContent('[data-backend="app-1"] .down-for'), /^down for \d+s$/);
    await page.waitForSelector('[data-backend="app-2"] svg.chart polyline.rate', { timeout: 30_000 });
    t.match(await page.textContent('[data-backend="app-2"] .legend'), /req\/s .* err\/s .* ms/);
    // Buttons where they apply: a down hot can be drained; a standby warm promoted; no promote on a hot.
    t.ok(await page.$('[data-backend="app-1"] button[data-action="drain"]'), 'drain on an enabled backend');
    t.notOk(await page.$('[data-backend="app-2"] button[data-action="promote"]'), 'no promote on a hot backend');
    t.notOk(await page.$('[data-backend="spare-1"] button[data-action="demote"]'), 'no demote on a warm whose hot is still down (it would be refused)');
    await page.click('[data-backend="spare-2"] button[data-action="promote"]');
    await page.waitForSelector('[data-backend="spare-2"] button[data-action="demote"]', { timeout: 30_000 });
    t.match(await page.textContent('[data-backend="spare-2"]'), 'promoted by operator', 'the button acted, with the token');
    await page.waitForSelector('li[data-type="admin"]', { timeout: 30_000 });

    // A recovered hot serving again while its warm still covers it: the failback hold still to run.
    await api1.kill();
    await page.waitForSelector('[data-backend="api-spare"][data-state="serving"]', { timeout: 30_000 });
    await api1.start();
    await page.waitForSelector('[data-backend="api-1"] .hold', { timeout: 30_000 });
    t.match(await page.textContent('[data-backend="api-1"] .hold'), /^failback in \d+s \(hold\)$/);
    await page.waitForSelector('[data-backend="api-spare"] button[data-action="demote"]', { timeout: 30_000 });

    // A failed reload: red in the event list and in the header.
    writeFileSync(file, 'listeners: [\n');
    const refused = await adminRequest(h.adminPort(), '/reload', { method: 'POST', token: TOKEN });
    t.equal(refused.status, 422);
    await page.waitForSelector('li.failed[data-type="reload"]', { timeout: 30_000 });
    await page.waitForSelector('#reload.bad', { timeout: 30_000 });
    t.match(await page.textContent('#reload'), 'FAILED');
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

    await page.setViewportSize({ width: 420, height: 900 });
    // Laid out again at the new width before measuring.
    await page.waitForFunction('window.innerWidth === 420', undefined, { timeout: 30_000 });
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    t.ok(overflow <= 0, `no horizontal scrolling in a narrow window (${overflow}px over)`);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-narrow.png`, fullPage: true });

    // Without a token the page shell loads (it carries no data) and asks for the token.
    const asking = await browser.newPage({ viewport: { width: 1280, height: 500 } });
    await asking.goto(`${base}/`);
    await asking.waitForSelector('#login.show', { timeout: 10_000 });
    t.equal(await asking.$('[data-backend]'), null, 'no data without the token');
    // The stream waits for the token instead of retrying a refused connection.
    await asking.waitForFunction("document.getElementById('conn-text').textContent === 'waiting for the token'", undefined, { timeout: 10_000 });
    await asking.screenshot({ path: `${ARTIFACTS}dashboard-token.png` });
    await asking.fill('#token-input', TOKEN);
    await asking.click('#token-go');
    await asking.waitForSelector('[data-backend="app-2"]', { timeout: 10_000 });
    await asking.waitForSelector('#conn.live', { timeout: 10_000 });
    t.notOk(await asking.$('#login.show'), 'the token form goes away once the token works');
    t.strictSame(problems, [], 'no console errors (a CSP violation would be one)');
  }
  await own.stopAll();
  await leaks.assertClean(t);
});
