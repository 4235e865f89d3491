// What the browser test files share: the environment (see run.mjs), Chromium's launch
// settings, steps that depend on earlier steps, and documentation screenshots that are
// rewritten only when the picture changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "..", "..");

export const BASE = (process.env.WHARF_URL || "").replace(/\/+$/, "");
export const USER2 = process.env.WHARF_USER2;
export const USER2_PASSWORD = process.env.WHARF_USER2_PASSWORD;
const SHOTS = path.resolve(ROOT, process.env.WHARF_SCREENSHOT_DIR || "docs/screenshots");
const FAILURES = process.env.WHARF_FAILURE_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "wharf-browser-failures-"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// playwright-core's own browser downloads are not used: Debian's Chromium, headless. launch()
// gives every run a fresh temporary profile (its own --user-data-dir), removed on close.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
export const VIEWPORT = { width: 1280, height: 800 };

export function url(p) {
  return BASE + p;
}

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** The settings of every browser context: fixed size, locale and time zone (stable screenshots). */
export function contextOptions(extra = {}) {
  return { viewport: VIEWPORT, deviceScaleFactor: 1, locale: "en-US", timezoneId: "UTC", ...extra };
}

/** Collects uncaught script errors of `p` into `errors` and sets the default timeouts. */
export function watch(p, errors) {
  p.on("pageerror", (e) => errors.push(`${p.url()}: ${e.message}`));
  p.setDefaultTimeout(15_000);
  p.setDefaultNavigationTimeout(20_000);
  return p;
}

/**
 * `step(name, needs, fn)`: a test that runs only when the steps it `needs` passed (a step
 * whose prerequisite failed is skipped: its cause is the earlier failure). On failure the
 * current page (`currentPage()`) is saved to WHARF_FAILURE_DIR with its URL.
 */
export function stepper(currentPage) {
  const passed = new Set();
  return function step(name, needs, fn) {
    test(name, async (t) => {
      const missing = needs.filter((n) => !passed.has(n));
      if (missing.length) {
        t.skip(`needs: ${missing.join(", ")}`);
        return;
      }
      try {
        await fn(t);
        passed.add(name);
      } catch (e) {
        const page = currentPage();
        if (page && !page.isClosed()) {
          const file = path.join(FAILURES, `${name.replace(/[^A-Za-z0-9]+/g, "-")}.png`);
          fs.mkdirSync(FAILURES, { recursive: true });
          await page.screenshot({ path: file }).catch(() => {});
          t.diagnostic(`failed at ${page.url()}; screenshot ${file}`);
        }
        throw e;
      }
    });
  };
}

/** Navigates and returns the main response (asserting its status). */
export async function visit(p, where, status = 200) {
  const r = await p.goto(url(where));
  assert.ok(r, `no response for ${where}`);
  assert.equal(r.status(), status, `GET ${where}: status ${r.status()}`);
  return r;
}

/**
 * A screenshot for docs/screenshots: 1280×800 (the viewport, not the whole page). Values that
 * change from run to run (the port in URLs, commit ids, dates) are set to fixed ones in the page
 * first, so an unchanged interface gives the same picture and the committed files stay as they are.
 */
export async function docShot(browser, p, name) {
  await p.evaluate((origin) => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const fakeSha = (s) => "3f9c2e7a1b8d4c6e0f5a9b2d7c1e8f4a6b3d0c5e".slice(0, s.length);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      let v = n.nodeValue;
      v = v.split(origin).join("http://localhost:8080");
      v = v.replace(/\b[0-9a-f]{40}\b/g, fakeSha);
      v = v.replace(/\b\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\b/g, "2025-01-01 12:00 UTC");
      if (n.parentElement && n.parentElement.closest(".sha")) v = v.replace(/\b[0-9a-f]{7,12}\b/g, fakeSha);
      n.nodeValue = v;
    }
  }, BASE);
  // Settled: fonts loaded and two frames drawn since the changes.
  await p.evaluate(() => document.fonts.ready.then(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))));
  const png = await p.screenshot({ animations: "disabled", caret: "hide" });
  const file = path.join(SHOTS, `${name}.png`);
  if (process.env.WHARF_SCREENSHOTS !== "update" && fs.existsSync(file) && (await pixelsChanged(browser, fs.readFileSync(file), png)) <= SAME_PICTURE_PIXELS) {
    return; // the same picture: leave the file (and git) alone
  }
  fs.mkdirSync(SHOTS, { recursive: true });
  fs.writeFileSync(file, png);
}

/**
 * Software rendering is not quite deterministic: a few anti-aliased pixels differ from run to
 * run. Up to this many changed pixels the committed screenshot is kept as it is.
 */
const SAME_PICTURE_PIXELS = 100;
/** A blank page per browser for comparing pictures. */
const scratchPages = new WeakMap();

/** How many pixels differ between two PNGs (all of them when the sizes differ). */
async function pixelsChanged(browser, a, b) {
  if (!scratchPages.has(browser)) scratchPages.set(browser, await browser.newPage());
  return scratchPages.get(browser).evaluate(async ([a, b]) => {
    const load = (src) => new Promise((ok, fail) => {
      const img = new Image();
      img.onload = () => ok(img);
      img.onerror = fail;
      img.src = `data:image/png;base64,${src}`;
    });
    const pixels = (img) => {
      const c = document.createElement("canvas");
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      return ctx.getImageData(0, 0, c.width, c.height).data;
    };
    const [ia, ib] = await Promise.all([load(a), load(b)]);
    if (ia.width !== ib.width || ia.height !== ib.height) return Infinity;
    const pa = pixels(ia);
    const pb = pixels(ib);
    let n = 0;
    for (let i = 0; i < pa.length; i += 4) {
      if (pa[i] !== pb[i] || pa[i + 1] !== pb[i + 1] || pa[i + 2] !== pb[i + 2] || pa[i + 3] !== pb[i + 3]) n += 1;
    }
    return n;
  }, [a.toString("base64"), b.toString("base64")]).catch(() => Infinity);
}
