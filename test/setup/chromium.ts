// Headless Chromium for the browser tests: Debian's own `chromium` package driven by playwright-core (which never
// downloads a browser of its own). When /usr/bin/chromium is missing, this installs it with apt-get, as root or via
// passwordless sudo; only when neither is possible do the browser tests skip, with the reason printed.
// TIERLINE_REQUIRE_BROWSER=1 turns that skip into a failure (for CI). TIERLINE_CHROMIUM=/path uses another binary.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext } from 'playwright-core';

const run = promisify(execFile);

export const CHROMIUM_PATH = process.env.TIERLINE_CHROMIUM || '/usr/bin/chromium';

/** The flags the project runs Chromium with: headless, no sandbox (root in CI), nothing that phones home. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function canSudo(): Promise<boolean> {
  try {
    await run('sudo', ['-n', 'true'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** One installer at a time across the forked test workers (dpkg holds a lock and a second apt-get would fail). */
async function withInstallLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(tmpdir(), 'tierline-chromium-install.lock');
  const started = Date.now();
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      if (Date.now() - started > 10 * 60_000) throw new Error(`waited 10 min for ${lock}; remove it if no install is running`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}

let ensured: Promise<string | null> | null = null;

/**
 * Makes sure Debian's Chromium is installed. Resolves to null when it is usable, or to the reason the browser tests
 * must skip (throws instead when TIERLINE_REQUIRE_BROWSER=1).
 */
export function ensureChromium(): Promise<string | null> {
  ensured ??= (async () => {
    if (existsSync(CHROMIUM_PATH)) return null;
    let reason: string | null = null;
    if (process.env.TIERLINE_CHROMIUM) reason = `TIERLINE_CHROMIUM=${CHROMIUM_PATH} does not exist`;
    else {
      const root = userInfo().uid === 0;
      const prefix = root ? [] : (await canSudo()) ? ['sudo', '-n'] : null;
      if (!prefix) reason = 'Debian\'s chromium is not installed and this user is neither root nor has passwordless sudo to install it (run: apt-get install chromium)';
      else {
        reason = await withInstallLock(async () => {
          if (existsSync(CHROMIUM_PATH)) return null;
          const apt = async (args: string[]) => {
            const [cmd, ...rest] = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
            await run(cmd!, rest, { timeout: 9 * 60_000, maxBuffer: 64 * 1024 * 1024 });
          };
          try {
            process.stderr.write('[chromium] installing Debian\'s chromium with apt-get (once per machine)…\n');
            await apt(['update', '-qq']);
            // Fonts: DejaVu for text, Noto emoji for the ticket cards' symbols in the screenshots.
            await apt(['install', '-y', '-qq', '--no-install-recommends', 'chromium', 'fonts-dejavu-core', 'fonts-noto-color-emoji']);
          } catch (err) {
            return `apt-get install chromium failed: ${err instanceof Error ? err.message.split('\n').slice(0, 3).join(' ') : String(err)}`;
          }
          return existsSync(CHROMIUM_PATH) ? null : `apt-get installed chromium but ${CHROMIUM_PATH} is missing`;
        });
      }
    }
    if (reason) {
      if (process.env.TIERLINE_REQUIRE_BROWSER === '1') throw new Error(`Browser tests are required (TIERLINE_REQUIRE_BROWSER=1) but cannot run: ${reason}`);
      process.stderr.write(`\n[chromium] SKIPPING the browser tests: ${reason}\n\n`);
    }
    return reason;
  })();
  return ensured;
}

export type TestBrowser = { context: BrowserContext; close(): Promise<void> };

/** Launches headless Chromium with a fresh profile directory, removed again on close. */
export async function launchChromium(opts: { viewport?: { width: number; height: number } } = {}): Promise<TestBrowser> {
  const { chromium } = await import('playwright-core');
  const profile = await mkdtemp(join(tmpdir(), 'tierline-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: opts.viewport ?? { width: 1280, height: 860 },
    timeout: 60_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
