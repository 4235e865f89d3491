// The inference widget on model pages, in headless Chromium: a user uploads tiny random-weight
// models (wharf-inference's `make_tiny_models`, as tests/test_inference.py does) through the
// upload form, types into the widget and sees the answer drawn in place: score bars for
// fill-mask, text streamed in token by token for text generation. Without JavaScript the same
// form answers with a result page.
//
// Steps build on each other (see harness.mjs). Run through run.mjs (see there for the environment).
import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BASE, ROOT, contextOptions, docShot, launchChromium, stepper, url, visit, watch } from "./harness.mjs";

// A fresh server per run, so fixed names (they keep the screenshot the same from run to run).
const USER = "grace";
const PASSWORD = "grace-pass-1234";
const FILL_MASK = `${USER}/tiny-fill-mask`;
const GENERATION = `${USER}/tiny-gpt2`;
const MAKE_TINY = path.join(ROOT, "target", "debug", "examples", "make_tiny_models");

let browser;
let context;
let page;
/** Where make_tiny_models wrote the models. */
let models;
const pageErrors = [];
const step = stepper(() => page);

/** Writes the tiny models (building the generator first when only the server was built). */
function makeTinyModels() {
  if (!fs.existsSync(MAKE_TINY)) {
    execFileSync("cargo", ["build", "-q", "-p", "wharf-inference", "--example", "make_tiny_models"],
      { cwd: ROOT, stdio: "inherit", timeout: 30 * 60 * 1000 });
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "wharf-widget-models-"));
  execFileSync(MAKE_TINY, [out], { stdio: "ignore", timeout: 5 * 60 * 1000 });
  return out;
}

/** Creates `name` on /new and uploads the files of a tiny model through the upload form. */
async function uploadModel(p, name, folder) {
  await visit(p, "/new");
  const form = p.locator("#new-repo-form");
  await form.locator("[name=name]").fill(name);
  await form.locator("[name=type]").selectOption("model");
  await form.locator("[name=visibility][value=public]").check();
  await Promise.all([p.waitForURL(url(`/${USER}/${name}`)), form.locator("#create-repo-submit").click()]);
  await visit(p, `/${USER}/${name}/upload/main`);
  const dir = path.join(models, folder);
  const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f));
  await p.locator("#upload-input").setInputFiles(files);
  await p.locator("#commit-message").fill("Upload the model");
  await Promise.all([p.waitForURL(url(`/${USER}/${name}/tree/main`)), p.locator("#upload-submit").click()]);
}

/** The score bars drawn in the widget: label, score and the bar's width in percent. */
async function scoreRows(p) {
  return p.locator("[data-testid=widget-result] .score-row").evaluateAll((rows) => rows.map((r) => ({
    label: r.querySelector(".score-label").textContent,
    score: Number(r.querySelector(".score-value").textContent),
    width: parseFloat(r.querySelector(".score-fill").style.width),
  })));
}

describe("Inference widget", () => {
  before(async () => {
    assert.ok(BASE, "WHARF_URL is not set");
    models = makeTinyModels();
    browser = await launchChromium();
    context = await browser.newContext(contextOptions());
    page = watch(await context.newPage(), pageErrors);
  });

  after(async () => {
    await browser?.close();
    if (models) fs.rmSync(models, { recursive: true, force: true });
  });

  step("sign up and upload a fill-mask model", [], async () => {
    await visit(page, "/join");
    const form = page.locator("#join-form");
    await form.locator("[name=username]").fill(USER);
    await form.locator("[name=email]").fill(`${USER}@example.com`);
    await form.locator("[name=password]").fill(PASSWORD);
    await Promise.all([page.waitForURL(url("/")), form.locator("#join-submit").click()]);
    await uploadModel(page, "tiny-fill-mask", "tiny-bert-fill-mask");
  });

  step("the fill-mask widget draws score bars", ["sign up and upload a fill-mask model"], async () => {
    await visit(page, `/${FILL_MASK}`);
    const widget = page.getByTestId("widget");
    assert.equal((await widget.getByTestId("widget-task").textContent()).trim(), "fill-mask");
    // The mask token of the model's tokenizer, and the card's example filled in.
    assert.match(await widget.getByTestId("widget-hint").textContent(), /\[MASK\]/);
    const text = page.locator("#widget-text");
    assert.equal(await text.inputValue(), "The goal of life is [MASK].");

    await text.fill("");
    await text.pressSequentially("Paris is the [MASK] of France.");
    await page.locator("#widget-submit").click();
    await page.locator("[data-testid=widget-result] .score-row").nth(4).waitFor();
    const rows = await scoreRows(page);
    assert.equal(rows.length, 5);
    for (const r of rows) {
      assert.ok(r.label.trim().length > 0, `a row without a label: ${JSON.stringify(rows)}`);
      assert.ok(r.score >= 0 && r.score <= 1, `score ${r.score}`);
      assert.ok(Math.abs(r.width - r.score * 100) < 0.2, `bar ${r.width}% for score ${r.score}`);
    }
    assert.deepEqual(rows.map((r) => r.score), rows.map((r) => r.score).sort((a, b) => b - a));
    // The page stayed where it was (the form was posted by the script).
    assert.equal(page.url(), url(`/${FILL_MASK}`));
    await docShot(browser, page, "widget");

    // The card's example puts its text back in the box.
    await page.getByTestId("widget-examples").locator("a").first().click();
    assert.equal(await text.inputValue(), "The goal of life is [MASK].");
    assert.equal(page.url(), url(`/${FILL_MASK}`));
  });

  step("the text-generation widget streams its text", ["sign up and upload a fill-mask model"], async () => {
    await uploadModel(page, "tiny-gpt2", "tiny-gpt2-text-generation");
    await visit(page, `/${GENERATION}`);
    assert.equal((await page.getByTestId("widget-task").textContent()).trim(), "text-generation");
    await page.locator("#widget-text").fill("Hello world");
    // Count the pieces of text added to the result while the answer arrives.
    await page.evaluate(() => {
      window.__pieces = 0;
      new MutationObserver((changes) => {
        for (const c of changes) {
          if (c.target.closest && c.target.closest("[data-testid=widget-generated]")) window.__pieces += c.addedNodes.length;
        }
      }).observe(document.getElementById("widget-result"), { childList: true, subtree: true });
    });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === url(`/${GENERATION}/widget`)),
      page.locator("#widget-submit").click(),
    ]);
    assert.match(response.headers()["content-type"], /^text\/event-stream/);
    await page.waitForFunction(() => !document.getElementById("widget-submit").disabled);
    const generated = await page.getByTestId("widget-generated").textContent();
    assert.ok(generated.length > 0, "no generated text");
    assert.ok((await page.evaluate(() => window.__pieces)) > 1, "the text arrived in one piece");
    assert.equal(await page.locator(".generation .prompt").textContent(), "Hello world");
    // Greedy decoding: the widget's JSON answer (as without streaming) is the same text.
    const answer = await page.evaluate(async (action) => {
      const form = document.getElementById("widget-form");
      const r = await fetch(action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json" },
      });
      return r.json();
    }, `/${GENERATION}/widget`);
    assert.equal(answer[0].generated_text, generated);
  });

  step("errors are shown in the widget", ["sign up and upload a fill-mask model"], async () => {
    await visit(page, `/${FILL_MASK}`);
    // An expired token (another visitor's): the server refuses, the widget says so.
    await page.locator("#widget-form input[name=_csrf]").evaluate((i) => { i.value = "expired"; });
    await page.locator("#widget-text").fill("Paris is the [MASK] of France.");
    await page.locator("#widget-submit").click();
    await page.getByTestId("widget-error").waitFor();
    assert.match(await page.getByTestId("widget-error").textContent(), /form expired/);
    assert.equal(await page.locator("[data-testid=widget-result] .score-row").count(), 0);
  });

  step("without JavaScript the form answers with a result page", ["sign up and upload a fill-mask model"], async () => {
    const plain = await browser.newContext(contextOptions({ javaScriptEnabled: false }));
    try {
      const p = watch(await plain.newPage(), pageErrors);
      await visit(p, `/${FILL_MASK}`);
      await p.locator("#widget-text").fill("Paris is the [MASK] of France.");
      await Promise.all([p.waitForURL(url(`/${FILL_MASK}/widget`)), p.locator("#widget-submit").click()]);
      assert.equal(await p.locator("[data-testid=widget-result] .score-row").count(), 5);
      assert.equal((await p.getByTestId("widget-task").textContent()).trim(), "fill-mask");
    } finally {
      await plain.close();
    }
  });

  step("no script errors on the pages", [], async () => {
    assert.deepEqual(pageErrors, []);
  });
});
