// The console in headless Chromium (Debian's, driven by playwright-core): the whole admin flow a person would follow,
// on a real HTTP server over loopback, with the real pipeline behind the sandbox forum. Screenshots of every page go
// to test-artifacts/console/ (gitignored), for people to look at.
import { serve, type ServerType } from '@hono/node-server';
import { mkdir } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.ts';
import { ticketKey } from '../../core/segment.ts';
import { SAMPLE_CONFIG } from '../../server/sandbox/sample-config.ts';
import { ensureChromium, launchChromium, type TestBrowser } from '../setup/chromium.ts';
import { setupConsole, TOKEN, type ConsoleSetup } from './harness.ts';

// The functions given to page.evaluate run in the browser; the project compiles without the DOM library, so they
// see these names loosely typed (module-local declarations, nothing global changes).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const getComputedStyle: (el: any) => any;
type Element = any;
type HTMLElement = any;
type HTMLInputElement = any;

const skip = await ensureChromium();
const SHOTS = 'test-artifacts/console';

/** Every text element's colour against the background it sits on, per WCAG 2 (4.5:1 body text, 3:1 large/bold). */
async function contrastProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const parse = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    const bgOf = (el: Element | null): number[] => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! > 0.9)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll('body *')) as any[]) {
      const own = Array.from(el.childNodes).some((n: any) => n.nodeType === 3 && n.textContent!.trim());
      if (!own || (el as HTMLElement).offsetParent === null || el.closest('svg, .sr-only, .skip')) continue;
      const st = getComputedStyle(el);
      const fg = parse(st.color).slice(0, 3);
      const bg = bgOf(el);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x) as [number, number];
      const ratio = (a + 0.05) / (b + 0.05);
      const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && Number(st.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) out.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent!.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
    }
    return out;
  });
}

/** Form controls without a label (or aria-label) a screen reader could announce. */
async function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
      .filter((el: any) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map((el: any) => `${el.tagName.toLowerCase()}#${el.id}[name=${el.getAttribute('name')}]`),
  );
}

describe.skipIf(skip !== null)('console in a real browser', () => {
  let c: ConsoleSetup;
  let server: ServerType;
  let base: string;
  let browser: TestBrowser;
  let page: Page;
  let shot = 0;
  const snap = async (name: string) => {
    shot++;
    await page.screenshot({ path: `${SHOTS}/${String(shot).padStart(2, '0')}-${name}.png`, fullPage: true });
  };
  const checkPage = async () => {
    expect(await unlabelled(page)).toEqual([]);
    expect(await contrastProblems(page)).toEqual([]);
  };

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    c = await setupConsole({ seed: 150, forum: true, generator: true });
    server = await new Promise<ServerType>((ok) => {
      const s = serve({ fetch: c.app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s));
    });
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('dialog', (d) => void d.accept());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  });

  it('signs in, watches a ticket arrive, explains it, acts as the agent, sees the first response, edits a rule, runs a what-if, saves and rolls back', async () => {
    // Sign in (a wrong token first).
    await page.goto(`${base}/history`);
    expect(page.url()).toBe(`${base}/login?next=%2Fhistory`);
    await snap('login');
    await page.fill('#token', 'wrong');
    await Promise.all([page.waitForURL(/\/login$/), page.click('button[type=submit]')]);
    await expect(page.locator('[role=alert]').textContent()).resolves.toMatch(/not the admin token/);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(`${base}/history`), page.click('button[type=submit]')]);
    await page.goto(`${base}/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Overview');
    await checkPage();
    await snap('overview');

    // A new ticket arrives while the overview is open: the live region shows it without a reload.
    const ref = c.h.crm.add('browser-1', { tier: 'enterprise', category: 'technical' }, 'Browser test: VIP cannot log in');
    await c.h.pipeline.intake.accept([{ idempotencyKey: 'b1', ref, reason: 'created', at: c.clock.now() }]);
    await c.h.drain();
    c.clock.advance(1_000);
    await page.locator('#live').getByText('Browser test: VIP cannot log in').first().waitFor({ timeout: 15_000 });
    await expect(page.locator('#live-status').textContent()).resolves.toMatch(/Updated/);
    await snap('overview-new-ticket');

    // Its explanation: rule, queue, agent and who was passed over.
    await Promise.all([page.waitForURL(/\/tickets\//), page.locator('#live tr', { hasText: 'Browser test: VIP cannot log in' }).getByRole('link', { name: /Why here\?/ }).click()]);
    const why = await page.locator('main').innerText();
    expect(why).toMatch(/Rule "enterprise" matched/);
    expect(why).toMatch(/Passed over:/);
    await checkPage();
    await snap('ticket-explanation');

    // Act as the assigned agent in the sandbox forum, three minutes later.
    const tk = (await c.store.getTicket(ticketKey(ref)))!;
    const agent = SAMPLE_CONFIG.agents.find((a) => a.id === tk.agentId)!;
    c.clock.advance(3 * 60_000);
    await page.getByRole('link', { name: 'Sandbox forum' }).click();
    await page.getByRole('link', { name: /Browser test: VIP cannot log in/ }).click();
    await expect(page.locator('#as-agent').inputValue()).resolves.toBe(agent.telegramUserId);
    await checkPage();
    await page.fill('#reply-text', 'Hello, looking at it now.');
    await Promise.all([page.waitForURL(/done=/), page.getByRole('button', { name: 'Send reply' }).click()]);
    await expect(page.locator('[role=status]').first().textContent()).resolves.toMatch(/Reply sent/);
    await expect(page.locator('.chat').innerText()).resolves.toMatch(/Hello, looking at it now\./);
    await snap('sandbox-forum-topic');

    // The first-response time shows in the history and went back onto the CRM record.
    await page.goto(`${base}/history?ticket=${encodeURIComponent(tk.key)}`);
    const row = page.locator('tbody tr', { hasText: 'first reply' });
    await expect(row.innerText()).resolves.toMatch(/First reply after 3\.0 min; SLA met[\s\S]*3 min/);
    expect(c.h.crm.writes.filter((w) => w.ref.ticketId === 'browser-1').at(-1)!.fields).toMatchObject({ status: 'answered', firstResponseMinutes: 3, slaMet: true });
    await snap('history-first-response');
    await page.goto(`${base}/history`);
    await page.selectOption('#f-tier', 'enterprise');
    await Promise.all([page.waitForURL(/tier=enterprise/), page.getByRole('button', { name: 'Apply filters' }).click()]);
    await page.locator('tbody tr details summary').first().click();
    await expect(page.locator('tbody tr details[open]').first().innerText()).resolves.toMatch(/tier enterprise from the CRM/);
    await checkPage();
    await snap('history-filtered');

    // Performance.
    await page.getByRole('link', { name: 'Performance' }).click();
    await page.selectOption('#p-period', 'all');
    await Promise.all([page.waitForURL(/period=all/), page.getByRole('button', { name: 'Show' }).click()]);
    expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(6);
    await checkPage();
    await snap('performance');

    // Edit a rule: a mistake is shown at its field, nothing is saved.
    await page.getByRole('link', { name: 'Configuration' }).click();
    const rules = page.locator('#field-rules');
    const original = await rules.inputValue();
    const parsed = JSON.parse(original) as { id: string; queue: string }[];
    parsed.find((r) => r.id === 'billing')!.queue = 'nowhere';
    await rules.fill(JSON.stringify(parsed, null, 2));
    await page.getByRole('button', { name: 'Save as a new version' }).click();
    await expect(page.locator('#err-rules').innerText()).resolves.toMatch(/rules\[4\] \(id "billing"\) → queue: unknown queue "nowhere"/);
    await expect(rules.getAttribute('aria-invalid')).resolves.toBe('true');
    expect((await c.store.getConfig())!.version).toBe(1);
    await checkPage();
    await snap('config-problem');

    // Fix it another way (drop the billing rule), replay the last week with it, then save from the result.
    await rules.fill(JSON.stringify((JSON.parse(original) as { id: string }[]).filter((r) => r.id !== 'billing'), null, 2));
    await Promise.all([page.waitForURL(/\/replay$/), page.getByRole('button', { name: /What-if/ }).click()]);
    const result = await page.locator('#result-h').locator('..').innerText();
    expect(result).toMatch(/Would move queue\s+\d+/);
    expect(result).toMatch(/Moves between queues[\s\S]*Billing\s+General/);
    expect(result).toMatch(/Projected load per agent/);
    expect(await page.locator('.side').count()).toBeGreaterThan(0);
    await checkPage();
    await snap('what-if');
    await page.fill('#save-note', 'billing to the general queue');
    await Promise.all([page.waitForURL(/saved=2/), page.getByRole('button', { name: 'Save this draft as a new version' }).click()]);
    await expect(page.locator('[role=status]').first().textContent()).resolves.toMatch(/Saved version 2/);
    expect((await c.store.getConfig())!.config.rules.map((r) => r.id)).not.toContain('billing');
    await snap('config-saved');

    // Roll back to version 1 (the page asks to confirm; the dialog is accepted).
    await Promise.all([page.waitForURL(/rolledBack=1/), page.getByRole('button', { name: 'Roll back to version 1' }).click()]);
    await expect(page.locator('[role=status]').first().textContent()).resolves.toMatch(/Rolled back: version 1 is in force again, saved as version 3/);
    expect((await c.store.getConfig())!.config.rules.map((r) => r.id)).toContain('billing');
    await snap('config-rolled-back');
  }, 180_000);

  it('retries a dead letter', async () => {
    const ref = c.h.crm.add('gone-1', { tier: 'free' });
    c.h.crm.failNext(new AppError('not_found', 'Ticket gone-1 was deleted in HubSpot.'));
    await c.h.pipeline.intake.accept([{ idempotencyKey: 'gone-1', ref, reason: 'created', at: c.clock.now() }]);
    await c.h.drain();
    await page.goto(`${base}/dead-letters`);
    await expect(page.locator('tbody').innerText()).resolves.toMatch(/not_found: Ticket gone-1 was deleted in HubSpot\./);
    await checkPage();
    await snap('dead-letters');
    await Promise.all([page.waitForURL(/retried=1/), page.getByRole('button', { name: /^Retry route for/ }).click()]);
    await expect(page.locator('[role=status]').first().textContent()).resolves.toMatch(/Queued 1 step to run again/);
    expect(await c.store.deadJobs()).toHaveLength(0);
  }, 60_000);

  it('works from the keyboard and at phone width', async () => {
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${base}/`);
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Skip to content');
    await page.keyboard.press('Enter');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('main');
    // The focused control is visibly outlined.
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).resolves.toBe('solid');

    await page.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [['/', 'phone-overview'], ['/history', 'phone-history'], ['/performance?period=all', 'phone-performance'], ['/config', 'phone-config']] as const) {
      await page.goto(`${base}${path}`);
      // Wide tables scroll inside their own region; the page itself never scrolls sideways.
      await expect(page.evaluate(() => document.documentElement.scrollWidth)).resolves.toBeLessThanOrEqual(391);
      await snap(name);
    }
    await page.setViewportSize({ width: 1280, height: 860 });
  }, 60_000);
});

if (skip) describe('console in a real browser', () => it.skip(`skipped: ${skip}`, () => {}));
