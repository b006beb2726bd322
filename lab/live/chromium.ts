/**
 * Debian's Chromium driven by playwright-core, for the browser tests and the screenshots: the system
 * browser (CI installs it with apt; `npx playwright install` is never needed), headless, with nothing
 * that phones home, and a context that can reach only the origins it is given.
 */
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumInstalled(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS });
}

/**
 * A fresh context at 1280×720 (the projector) in which every request outside `allowed` origins (and
 * `file:` URLs when `files` is set) is aborted, and recorded in `blocked`: a page that needs the network
 * cannot pass for one that does not.
 */
export async function offlineContext(
  browser: Browser,
  options: { readonly allowed: readonly string[]; readonly files?: boolean },
): Promise<{ context: BrowserContext; blocked: string[] }> {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 720 },
    serviceWorkers: 'block',
  });
  const blocked: string[] = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    const fine =
      options.allowed.some((origin) => url === origin || url.startsWith(`${origin}/`)) ||
      (options.files === true && url.startsWith('file:'));
    if (fine) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  return { context, blocked };
}

/** What the live page's stage box says now: its stage and the seconds left, if it counts down. */
export async function readStage(page: Page): Promise<{ stage: string | null; leftS: number | null }> {
  const stage = await page.locator('[data-stage]').first().getAttribute('data-stage', { timeout: 1_000 });
  const left = page.locator('#time-left');
  const text = (await left.count()) > 0 ? await left.textContent({ timeout: 1_000 }) : null;
  const leftS = text === null ? null : Number.parseInt(text, 10);
  return { stage, leftS: Number.isNaN(leftS) ? null : leftS };
}

/** Waits until the page shows `stage` with at most `maxLeftS` seconds left (any, when undefined). */
export async function waitForStage(
  page: Page,
  stage: string,
  options: { readonly maxLeftS?: number; readonly timeoutMs: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last: Awaited<ReturnType<typeof readStage>> | undefined;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    last = await readStage(page).catch(() => undefined);
    const leftFits = options.maxLeftS === undefined || (last?.leftS ?? Infinity) <= options.maxLeftS;
    if (last?.stage === stage && leftFits) return;
    await page.waitForTimeout(200);
  }
  throw new Error(
    `the live page did not show stage ${JSON.stringify(stage)} within ${options.timeoutMs} ms (last: ${JSON.stringify(last)})`,
  );
}
