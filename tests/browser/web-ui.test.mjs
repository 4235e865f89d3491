// End-to-end tests of Wharf's web interface in headless Chromium, as a person would use it:
// sign up, make a token, create a repository, upload by drag and drop, edit the card with its
// metadata form and live preview, find the repository under its task, read the history and a
// diff; code is syntax highlighted (card and file view); a private repository stays hidden
// from another user, and hostile card HTML stays inert.
//
// The steps share one browser and build on each other: a step whose prerequisite failed is
// skipped (its cause is the earlier failure). Run through run.mjs (see there for the environment).
import { after, before, describe } from "node:test";
import assert from "node:assert/strict";
import { BASE, USER2, USER2_PASSWORD, contextOptions, docShot as saveShot, launchChromium, stepper, url, visit, watch as watchPage } from "./harness.mjs";

// The account signed up in the browser, and its repositories (a fresh server per run, so fixed
// names: they also keep the screenshots the same from run to run).
const USER = "ada";
const EMAIL = "ada@example.com";
const PASSWORD = "ada-pass-1234";
const MODEL = `${USER}/tiny-bert`;
const SECRET = `${USER}/secret-model`;
const XSS = `${USER}/hostile-card`;
const CODE = `${USER}/code-demo`;

// A small training script and a card with a fenced Python block; both carry a script payload
// inside a string, which must come out as text between the highlighter's spans.
const TRAIN_PY = [
  '"""Fine-tune tiny-bert on a toy task."""',
  "import torch",
  "from transformers import AutoModelForMaskedLM",
  "",
  "",
  "def train(steps: int = 100, lr: float = 3e-4) -> None:",
  "    # One optimiser step per batch.",
  '    model = AutoModelForMaskedLM.from_pretrained("ada/tiny-bert")',
  "    banner = '<script>window.__pwned = \"py\"</script>'",
  "    for step in range(steps):",
  '        print(f"step {step}: {banner}")',
  "",
].join("\n");
const CODE_CARD = [
  "# Code demo",
  "",
  "```python",
  "from transformers import pipeline",
  "",
  'fill = pipeline("fill-mask", model="ada/tiny-bert")  # load once',
  "print(fill(\"Paris is the [MASK] of France.\"), '<script>window.__pwned = 1</script>')",
  "```",
  "",
].join("\n");

const CONFIG = JSON.stringify({ architectures: ["BertForMaskedLM"], hidden_size: 128, num_hidden_layers: 2 }, null, 2) + "\n";

let browser;
/** The signed-up user's browser context and page. */
let ada;
let page;
/** Uncaught errors of the pages' scripts (wharf.js must not throw). */
const pageErrors = [];
/** What earlier steps found out (the token, commit URLs). */
const found = {};

function watch(p) {
  return watchPage(p, pageErrors);
}

async function newPage(context) {
  return watch(await context.newPage());
}

/** A step that runs only when the steps it `needs` passed (see harness.mjs). */
const step = stepper(() => page);

/** A screenshot for docs/screenshots (see harness.mjs). */
function docShot(p, name) {
  return saveShot(browser, p, name);
}

/** Rows of the file list: their data-path values. */
async function fileNames(p) {
  return p.locator("#file-list tr.entry").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-path")));
}

/** The repo ids of the listing's cards. */
async function cardIds(p) {
  return p.locator(".repo-card").evaluateAll((cards) => cards.map((c) => c.getAttribute("data-repo-id")));
}

/** Creates a repository through /new, as the logged-in user of `p`. */
async function createRepo(p, name, { visibility = "public", license = "" } = {}) {
  await visit(p, "/new");
  const form = p.locator("#new-repo-form");
  await form.locator("[name=name]").fill(name);
  await form.locator("[name=type]").selectOption("model");
  await form.locator("[name=license]").selectOption(license);
  await form.locator(`[name=visibility][value=${visibility}]`).check();
  await Promise.all([p.waitForURL(url(`/${USER}/${name}`)), form.locator("#create-repo-submit").click()]);
}

/** Everything in #model-card (or another root) that could run script. */
async function activeContent(p, selector) {
  return p.locator(selector).evaluate((root) => {
    const bad = [];
    const risky = /^(javascript|vbscript|data:text\/html)/;
    for (const el of root.querySelectorAll("*")) {
      const tag = el.tagName.toLowerCase();
      if (["script", "iframe", "object", "embed", "frame", "frameset", "base", "meta", "link", "form"].includes(tag)) {
        bad.push(`<${tag}>`);
      }
      for (const a of el.attributes) {
        const name = a.name.toLowerCase();
        if (name.startsWith("on")) bad.push(`<${tag} ${name}="${a.value}">`);
        // Browsers ignore whitespace and control characters inside a scheme.
        const value = a.value.replace(/[\u0000-\u0020]/g, "").toLowerCase();
        if (["href", "src", "action", "formaction", "xlink:href", "srcdoc", "data", "style"].includes(name)) {
          if (risky.test(value) || (name === "style" && /expression|javascript:|url\(/.test(value))) {
            bad.push(`<${tag} ${name}="${a.value}">`);
          }
          if (name === "srcdoc") bad.push(`<${tag} srcdoc>`);
        }
      }
    }
    return bad;
  });
}

describe("Wharf web interface", () => {
  before(async () => {
    assert.ok(BASE, "WHARF_URL is not set");
    browser = await launchChromium();
    ada = await browser.newContext(contextOptions());
    page = await newPage(ada);
  });

  after(async () => {
    await browser?.close();
  });

  step("sign up", [], async () => {
    await visit(page, "/");
    await page.getByTestId("join-link").click();
    await page.waitForURL(url("/join"));
    const form = page.locator("#join-form");
    await form.locator("[name=username]").fill(USER);
    await form.locator("[name=email]").fill(EMAIL);
    await form.locator("[name=password]").fill(PASSWORD);
    await Promise.all([page.waitForURL(url("/")), form.locator("#join-submit").click()]);
    assert.equal((await page.getByTestId("user-link").textContent()).trim(), USER);
    const cookies = await ada.cookies(BASE);
    const session = cookies.find((c) => c.name === "wharf_session");
    assert.ok(session, "no session cookie after signing up");
    assert.ok(session.httpOnly, "the session cookie must be HttpOnly");
  });

  step("create a token on /settings/tokens (value shown once)", ["sign up"], async () => {
    await visit(page, "/settings/tokens");
    const form = page.locator("#token-form");
    await form.locator("[name=label]").fill("laptop");
    await form.locator("[name=role]").selectOption("write");
    await Promise.all([page.waitForLoadState("load"), form.locator("#token-submit").click()]);
    await page.locator("#token-value").waitFor();
    const token = await page.locator("#token-value").inputValue();
    assert.match(token, /^hf_[A-Za-z0-9]+$/);
    found.token = token;
    // The token works against the API.
    const who = await fetch(url("/api/whoami-v2"), { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(who.status, 200);
    assert.equal((await who.json()).name, USER);
    // Shown once: a fresh visit lists the token by name only.
    await visit(page, "/settings/tokens");
    assert.equal(await page.locator("#token-value").count(), 0);
    const list = await page.locator("#token-list").textContent();
    assert.match(list, /laptop/);
    assert.ok(!(await page.content()).includes(token), "the token's value is shown again");
  });

  step("create a repository via /new", ["sign up"], async () => {
    await createRepo(page, "tiny-bert", { license: "mit" });
    assert.equal((await page.getByTestId("repo-name").textContent()).trim(), "tiny-bert");
    assert.equal(await page.getByTestId("private-badge").count(), 0);
    // A license chosen on /new starts the card.
    assert.equal((await page.getByTestId("meta-license-value").textContent()).trim(), "mit");
    assert.match(await page.locator("#model-card h1").textContent(), /tiny-bert/);
    // The token from the settings page can read it through the API.
    if (found.token) {
      const r = await fetch(url(`/api/models/${MODEL}`), { headers: { Authorization: `Bearer ${found.token}` } });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).id, MODEL);
    }
  });

  step("the drop zone takes dropped files", ["create a repository via /new"], async () => {
    await visit(page, `/${MODEL}/tree/main`);
    await Promise.all([page.waitForURL(url(`/${MODEL}/upload/main`)), page.getByTestId("upload-link").click()]);
    const drop = page.locator("#upload-drop");
    // A real drag and drop: a DataTransfer holding a File, sent as dragenter, dragover, drop.
    const entered = await drop.evaluate((zone, text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], "config.json", { type: "application/json" }));
      window.__dropped = dt;
      const send = (type) => zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
      const enterAccepted = !send("dragenter");
      const overAccepted = !send("dragover");
      return { enterAccepted, overAccepted, dragging: zone.classList.contains("dragging") };
    }, CONFIG);
    // preventDefault on dragenter/dragover is what lets the browser drop here.
    assert.deepEqual(entered, { enterAccepted: true, overAccepted: true, dragging: true });
    const dropped = await drop.evaluate((zone) => {
      const notCancelled = zone.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: window.__dropped }));
      const input = document.getElementById("upload-input");
      return {
        dropAccepted: !notCancelled,
        dragging: zone.classList.contains("dragging"),
        files: Array.from(input.files, (f) => [f.name, f.size]),
      };
    });
    assert.deepEqual(dropped, { dropAccepted: true, dragging: false, files: [["config.json", Buffer.byteLength(CONFIG)]] });
    assert.equal((await page.locator("#upload-files li").allTextContents()).join("|"), `config.json (${Buffer.byteLength(CONFIG)} bytes)`);
    await page.locator("#commit-message").fill("Add config");
    await docShot(page, "upload");
  });

  step("upload the dropped file and see it in the file list", ["the drop zone takes dropped files"], async () => {
    await Promise.all([page.waitForURL(url(`/${MODEL}/tree/main`)), page.locator("#upload-submit").click()]);
    const names = await fileNames(page);
    assert.ok(names.includes("config.json"), `config.json not in the file list: ${names}`);
    assert.ok(names.includes("README.md"), `README.md not in the file list: ${names}`);
    const row = page.locator('#file-list tr.entry[data-path="config.json"]');
    assert.equal((await row.locator("td.commit").textContent()).trim(), "Add config");
    // The uploaded bytes are the dropped ones.
    const raw = await fetch(url(`/${MODEL}/resolve/main/config.json`));
    assert.equal(raw.status, 200);
    assert.equal(await raw.text(), CONFIG);
  });

  step("upload through the file chooser into a folder", ["upload the dropped file and see it in the file list"], async () => {
    await visit(page, `/${MODEL}/upload/main`);
    await page.locator("#upload-dir").fill("docs");
    await page.locator("#upload-input").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("first notes\n") });
    assert.match(await page.locator("#upload-files").textContent(), /notes\.txt \(12 bytes\)/);
    await page.locator("#commit-message").fill("Add notes");
    await Promise.all([page.waitForURL(url(`/${MODEL}/tree/main/docs`)), page.locator("#upload-submit").click()]);
    assert.deepEqual(await fileNames(page), ["notes.txt"]);
    // Back at the root, the folder is listed first.
    await visit(page, `/${MODEL}/tree/main`);
    const names = await fileNames(page);
    assert.equal(names[0], "docs");
    assert.equal((await page.locator("#branch-select option:checked").textContent()).trim(), "main");
    await docShot(page, "files");
  });

  step("edit the README with the metadata form and the live preview", ["upload the dropped file and see it in the file list"], async () => {
    await visit(page, `/${MODEL}/blob/main/README.md`);
    await Promise.all([page.waitForURL(url(`/${MODEL}/edit/main/README.md`)), page.getByTestId("edit-link").click()]);
    // The form shows the card's current metadata.
    assert.equal(await page.locator("#meta-license").inputValue(), "mit");
    assert.equal(await page.locator("#meta-pipeline-tag").inputValue(), "");
    assert.equal(await page.locator("#meta-tags").inputValue(), "");
    // The preview renders the current card on load, without its YAML block.
    await page.locator("#preview h1").filter({ hasText: "tiny-bert" }).waitFor();

    const editor = page.locator("#editor");
    const before = await editor.inputValue();
    assert.match(before, /^---\nlicense: mit\n---\n/);
    const body = "# Tiny BERT\n\nA **small** masked language model for tests.\n\n| layers | hidden |\n| --- | --- |\n| 2 | 128 |\n";
    await editor.fill(before.replace(/\n---\n[\s\S]*$/, "\n---\n" + body));
    // The live preview follows the text as it is typed (debounced, rendered by the server).
    await page.locator("#preview h1").filter({ hasText: "Tiny BERT" }).waitFor();
    assert.equal((await page.locator("#preview strong").textContent()).trim(), "small");
    assert.equal(await page.locator("#preview table td").count(), 2);
    assert.ok(!(await page.locator("#preview").textContent()).includes("license: mit"), "the preview shows the YAML block");
    await editor.press("End");
    await editor.pressSequentially("\nTyped line.");
    await page.locator("#preview p", { hasText: "Typed line." }).waitFor();

    await page.locator("#meta-license").fill("apache-2.0");
    await page.locator("#meta-pipeline-tag").selectOption("fill-mask");
    await page.locator("#meta-tags").fill("bert, tiny-models");
    await page.locator("#commit-message").fill("Describe the model");
    await Promise.all([page.waitForURL(url(`/${MODEL}/blob/main/README.md`)), page.locator("#commit-submit").click()]);

    const text = await page.getByTestId("code").textContent();
    assert.match(text, /license: apache-2\.0/);
    assert.match(text, /pipeline_tag: fill-mask/);
    assert.match(text, /- bert/);
    assert.match(text, /- tiny-models/);
    assert.match(text, /Typed line\./);

    await visit(page, `/${MODEL}`);
    assert.equal((await page.locator("#model-card h1").textContent()).trim(), "Tiny BERT");
    assert.equal((await page.getByTestId("meta-task").textContent()).trim(), "fill-mask");
    assert.equal((await page.getByTestId("meta-license-value").textContent()).trim(), "apache-2.0");
    const chips = (await page.locator("[data-testid=tags] .chip").allTextContents()).map((s) => s.trim());
    for (const tag of ["fill-mask", "bert", "tiny-models"]) assert.ok(chips.includes(tag), `tag ${tag} not shown: ${chips}`);
    await docShot(page, "model-page");
  });

  step("the repository is listed under its task", ["edit the README with the metadata form and the live preview"], async () => {
    // From the card: the task chip leads to the filtered listing.
    await visit(page, `/${MODEL}`);
    await Promise.all([
      page.waitForURL((u) => u.pathname === "/models" && u.searchParams.get("pipeline_tag") === "fill-mask"),
      page.locator("[data-testid=tags] .chip", { hasText: /^fill-mask$/ }).click(),
    ]);
    assert.ok((await cardIds(page)).includes(MODEL));

    await visit(page, "/models?pipeline_tag=fill-mask");
    const ids = await cardIds(page);
    assert.ok(ids.includes(MODEL), `${MODEL} not under fill-mask: ${ids}`);
    for (const task of await page.locator(".repo-card [data-testid=task]").allTextContents()) {
      assert.equal(task.trim(), "fill-mask");
    }
    // Another task's listing does not have it.
    await visit(page, "/models?pipeline_tag=text-generation");
    assert.ok(!(await cardIds(page)).includes(MODEL));

    // The facet in the sidebar of /models, and the name filter.
    await visit(page, "/models");
    await Promise.all([
      page.waitForURL((u) => u.searchParams.get("pipeline_tag") === "fill-mask"),
      page.locator('[data-facet="pipeline_tag"] a.facet', { hasText: "fill-mask" }).click(),
    ]);
    assert.ok((await cardIds(page)).includes(MODEL));
    await visit(page, "/models");
    await page.locator("#search").fill("tiny");
    await Promise.all([page.waitForURL((u) => u.searchParams.get("search") === "tiny"), page.locator("#search").press("Enter")]);
    assert.deepEqual(await cardIds(page), [MODEL]);
    await page.locator("#search").fill("no-such-model-here");
    await Promise.all([page.waitForURL((u) => u.searchParams.get("search") === "no-such-model-here"), page.locator("#search").press("Enter")]);
    assert.equal(await page.locator(".repo-card").count(), 0);
    assert.equal(await page.getByTestId("no-results").count(), 1);
  });

  step("history shows the commits", ["edit the README with the metadata form and the live preview"], async () => {
    await visit(page, `/${MODEL}/tree/main`);
    await Promise.all([page.waitForURL(url(`/${MODEL}/commits/main`)), page.getByTestId("history-link").click()]);
    const titles = (await page.locator("#commit-list li.commit .commit-title").allTextContents()).map((s) => s.trim());
    // Newest first: the card edit, both uploads, the README from /new, the repository's first commit.
    assert.deepEqual(titles.slice(0, 4), ["Describe the model", "Add notes", "Add config", "Add README.md with license"]);
    assert.equal(titles.length, 5, `commits: ${titles}`);
    for (const author of await page.locator("#commit-list li.commit .commit-main strong").allTextContents().then((a) => a.slice(0, 4))) {
      assert.equal(author.trim(), USER);
    }
    found.editCommit = await page.locator("#commit-list li.commit").nth(0).locator("a.commit-title").getAttribute("href");
    found.configCommit = await page.locator("#commit-list li.commit").nth(2).locator("a.commit-title").getAttribute("href");
    assert.match(found.editCommit, new RegExp(`^/${MODEL}/commit/[0-9a-f]{40}$`));
    // One file's history.
    await visit(page, `/${MODEL}/commits/main?path=config.json`);
    const own = (await page.locator("#commit-list li.commit .commit-title").allTextContents()).map((s) => s.trim());
    assert.deepEqual(own, ["Add config"]);
  });

  step("the commit page shows the diff", ["history shows the commits"], async () => {
    await visit(page, `/${MODEL}/commits/main`);
    await Promise.all([page.waitForURL(url(found.editCommit)), page.locator(`#commit-list a.commit-title[href="${found.editCommit}"]`).click()]);
    assert.equal((await page.locator(".commit-head h2").textContent()).trim(), "Describe the model");
    const diffs = page.locator(".diff");
    assert.equal(await diffs.count(), 1);
    const readme = page.locator('.diff[data-path="README.md"]');
    assert.equal((await readme.locator(".diff-head .change").textContent()).trim(), "modified");
    const added = (await readme.locator("tr.add td.lc").allTextContents()).map((s) => s.trim());
    const removed = (await readme.locator("tr.del td.lc").allTextContents()).map((s) => s.trim());
    for (const line of ["+license: apache-2.0", "+pipeline_tag: fill-mask", "+- bert", "+# Tiny BERT"]) {
      assert.ok(added.includes(line), `${line} not among the added lines: ${added}`);
    }
    for (const line of ["-license: mit", "-# tiny-bert"]) {
      assert.ok(removed.includes(line), `${line} not among the removed lines: ${removed}`);
    }
    await docShot(page, "commit-diff");

    // The upload's commit adds the file.
    await visit(page, found.configCommit);
    const cfg = page.locator('.diff[data-path="config.json"]');
    assert.equal((await cfg.locator(".diff-head .change").textContent()).trim(), "added");
    assert.ok((await cfg.locator("tr.add td.lc").allTextContents()).some((l) => l.includes('"hidden_size": 128')));
  });

  step("the revision selector switches branches", ["create a token on /settings/tokens (value shown once)", "history shows the commits"], async () => {
    // A branch made with the token from the settings page, at the upload of config.json.
    const at = found.configCommit.split("/").pop();
    const r = await fetch(url(`/api/models/${MODEL}/branch/dev`), {
      method: "POST",
      headers: { Authorization: `Bearer ${found.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ startingPoint: at }),
    });
    assert.equal(r.status, 200, await r.text());
    await visit(page, `/${MODEL}/tree/main`);
    const options = (await page.locator("#branch-select option").allTextContents()).map((s) => s.trim());
    assert.ok(options.includes("main") && options.includes("dev"), `revisions offered: ${options}`);
    await Promise.all([page.waitForURL(url(`/${MODEL}/tree/dev`)), page.locator("#branch-select").selectOption({ label: "dev" })]);
    assert.equal((await page.locator("#branch-select option:checked").textContent()).trim(), "dev");
    // The branch has the state of its commit: config.json, no docs/ yet.
    const names = await fileNames(page);
    assert.ok(names.includes("config.json") && !names.includes("docs"), `files on dev: ${names}`);
    // The history follows the selector too.
    await visit(page, `/${MODEL}/commits/main`);
    // (The option's URL ends in a bare "?" when no path filter is set: harmless, not checked.)
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/${MODEL}/commits/dev` && !u.searchParams.has("path")),
      page.locator("#branch-select").selectOption({ label: "dev" }),
    ]);
    const titles = (await page.locator("#commit-list li.commit .commit-title").allTextContents()).map((s) => s.trim());
    assert.equal(titles[0], "Add config");
  });

  step("code is highlighted in the card and the file view", ["sign up"], async () => {
    await createRepo(page, "code-demo");
    await visit(page, `/${CODE}/upload/main`);
    await page.locator("#upload-input").setInputFiles([
      { name: "train.py", mimeType: "text/x-python", buffer: Buffer.from(TRAIN_PY) },
      { name: "README.md", mimeType: "text/markdown", buffer: Buffer.from(CODE_CARD) },
    ]);
    await page.locator("#commit-message").fill("Add a training script");
    await Promise.all([page.waitForURL(url(`/${CODE}/tree/main`)), page.locator("#upload-submit").click()]);

    // The card's fenced block: spans with the highlighter's classes, coloured by the stylesheet.
    await visit(page, `/${CODE}`);
    const block = page.locator('#model-card pre code.language-python');
    assert.equal(await block.count(), 1);
    assert.ok((await block.locator('span[class^="hl-"]').count()) > 5, "no highlighted spans in the card's code");
    assert.match(await block.textContent(), /<script>window\.__pwned = 1<\/script>/);
    assert.equal(await page.locator("#model-card script").count(), 0);
    const colours = await block.evaluate((code) => {
      const colour = (sel) => { const el = code.querySelector(sel); return el && getComputedStyle(el).color; };
      return { text: getComputedStyle(code).color, string: colour(".hl-string"), comment: colour(".hl-comment") };
    });
    assert.ok(colours.string && colours.string !== colours.text, `strings are not coloured: ${JSON.stringify(colours)}`);
    assert.ok(colours.comment && colours.comment !== colours.text, `comments are not coloured: ${JSON.stringify(colours)}`);
    assert.deepEqual(await activeContent(page, "#model-card"), [], "active content in #model-card");

    // The file view: every line highlighted in its own row, the payload shown as text.
    await visit(page, `/${CODE}/blob/main/train.py`);
    const code = page.getByTestId("code");
    assert.equal(await code.getAttribute("data-language"), "Python");
    assert.equal(await code.locator("tr").count(), TRAIN_PY.split("\n").length - 1);
    for (const cls of ["hl-comment", "hl-string", "hl-keyword"]) {
      assert.ok((await code.locator(`span.${cls}`).count()) > 0, `no .${cls} in the file view`);
    }
    assert.match(await code.locator("#L9").textContent(), /<script>window\.__pwned = "py"<\/script>/);
    assert.equal(await code.locator("script").count(), 0);
    const keyword = await code.locator("span.hl-keyword").first().evaluate((el) => getComputedStyle(el).color);
    const plain = await code.locator("td.lc").first().evaluate((el) => getComputedStyle(el).color);
    assert.notEqual(keyword, plain, "keywords are not coloured");
    assert.equal(await page.evaluate(() => window.__pwned), undefined, "a script in the code ran");
    await docShot(page, "code-view");
  });

  step("a private repository is invisible to another user", ["sign up"], async () => {
    await createRepo(page, "secret-model", { visibility: "private" });
    assert.equal(await page.getByTestId("private-badge").count(), 1);
    // Its owner sees it listed.
    await visit(page, `/models?search=secret`);
    assert.deepEqual(await cardIds(page), [SECRET]);
    await visit(page, `/${USER}`);
    assert.ok((await cardIds(page)).includes(SECRET));

    const other = await browser.newContext({ viewport: contextOptions().viewport });
    try {
      const p = await newPage(other);
      await visit(p, "/login");
      await p.locator("#login-form [name=username]").fill(USER2);
      await p.locator("#login-form [name=password]").fill(USER2_PASSWORD);
      await Promise.all([p.waitForURL(url("/")), p.locator("#login-submit").click()]);
      assert.equal((await p.getByTestId("user-link").textContent()).trim(), USER2);
      for (const where of [`/${SECRET}`, `/${SECRET}/tree/main`, `/${SECRET}/commits/main`, `/${SECRET}/upload/main`]) {
        await visit(p, where, 404);
        assert.equal((await p.getByTestId("error-status").textContent()).trim(), "404", where);
        assert.ok(!(await p.content()).includes("secret-model</a>"), `${where} shows the repository`);
      }
      for (const where of ["/models", "/models?search=secret", `/${USER}`, "/"]) {
        await visit(p, where);
        assert.ok(!(await cardIds(p)).includes(SECRET), `${where} lists ${SECRET}`);
        assert.ok(!(await p.content()).includes(SECRET), `${where} mentions ${SECRET}`);
      }
      // The same for a visitor who is not logged in.
      await other.clearCookies();
      await visit(p, `/${SECRET}`, 404);
      await visit(p, "/models");
      assert.ok(!(await cardIds(p)).includes(SECRET));
    } finally {
      await other.close();
    }
  });

  step("hostile card HTML renders inert", ["sign up"], async () => {
    const dialogs = [];
    const onDialog = (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      d.dismiss().catch(() => {});
    };
    page.on("dialog", onDialog);
    try {
      await createRepo(page, "hostile-card");
      // An empty repository offers to create its card.
      await Promise.all([
        page.waitForURL((u) => u.pathname === `/${XSS}/new/main` && u.searchParams.get("filename") === "README.md"),
        page.locator("#model-card a", { hasText: "Create a card" }).click(),
      ]);
      assert.equal(await page.locator("#file-path").inputValue(), "README.md");
      const evil = [
        "# Hostile card",
        "",
        "<script>window.__pwned = 'script'; alert('script')</script>",
        "",
        "<img src=x onerror=\"window.__pwned='img'; alert('img onerror')\">",
        "",
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" onload="alert(\'img onload\')">',
        "",
        "[markdown js link](javascript:alert(1))",
        "",
        "[spaced js link](<JaVaScRiPt:alert('spaced link')>)",
        "",
        "[reference js link][evil]",
        "",
        "[evil]: javascript:alert(2)",
        "",
        "<a href=\"javascript:alert('raw link')\" onclick=\"alert('onclick')\">raw js link</a>",
        "",
        "<a href=\"&#106;avascript:alert('entity link')\">entity js link</a>",
        "",
        "<svg onload=\"alert('svg')\"><circle r=\"5\"/></svg>",
        "",
        "<iframe src=\"javascript:alert('iframe')\"></iframe>",
        "",
        "<details open ontoggle=\"alert('toggle')\"><summary>more</summary>text</details>",
        "",
        "<form action=\"javascript:alert('form')\"><button>go</button></form>",
        "",
        "<div style=\"background:url(javascript:alert('css'))\" onmouseover=\"alert('hover')\">hover me</div>",
        "",
        "Still a **card**.",
        "",
      ].join("\n");
      await page.locator("#editor").fill(evil);
      // The live preview goes through the server's sanitizer too, and is put in with innerHTML.
      await page.locator("#preview h1", { hasText: "Hostile card" }).waitFor();
      await page.waitForTimeout(300);
      assert.deepEqual(await activeContent(page, "#preview"), [], "active content in the preview");
      await page.locator("#commit-message").fill("Hostile card");
      await Promise.all([page.waitForURL(url(`/${XSS}/blob/main/README.md`)), page.locator("#commit-submit").click()]);

      await visit(page, `/${XSS}`);
      await page.locator("#model-card h1", { hasText: "Hostile card" }).waitFor();
      assert.match(await page.locator("#model-card").textContent(), /Still a card\./);
      // Give error and load handlers every chance to run: wait for the card's images to settle.
      await page.locator("#model-card").evaluate((card) =>
        Promise.all(Array.from(card.querySelectorAll("img"), (img) =>
          img.complete ? null : new Promise((done) => { img.onload = img.onerror = done; setTimeout(done, 2000); }))));
      await page.locator("#model-card").hover();
      await page.waitForTimeout(300);
      assert.equal(await page.locator("#model-card script").count(), 0, "a script element inside #model-card");
      assert.deepEqual(await activeContent(page, "#model-card"), [], "active content in #model-card");
      // The links are still there as text or anchors, none of them pointing at a script.
      for (const label of ["markdown js link", "spaced js link", "reference js link", "raw js link", "entity js link"]) {
        assert.match(await page.locator("#model-card").textContent(), new RegExp(label), `${label} vanished`);
        const link = page.locator("#model-card a", { hasText: label });
        if (await link.count()) {
          const href = await link.first().getAttribute("href");
          assert.ok(href === null || !/^\s*javascript:/i.test(href), `${label} keeps href ${href}`);
        }
      }
      const hover = page.locator("#model-card div", { hasText: "hover me" });
      if (await hover.count()) await hover.first().hover();
      await page.waitForTimeout(200);
      assert.equal(await page.evaluate(() => window.__pwned), undefined, "a script of the card ran");
      assert.deepEqual(dialogs, [], "dialogs opened by the card");
      // The file view shows the same text escaped.
      await visit(page, `/${XSS}/blob/main/README.md`);
      assert.match(await page.getByTestId("code").textContent(), /<script>window\.__pwned/);
      assert.equal(await page.locator("[data-testid=code] script").count(), 0);
      assert.deepEqual(dialogs, [], "dialogs opened by the file view");
    } finally {
      page.off("dialog", onDialog);
    }
  });

  step("model list screenshot", ["the repository is listed under its task"], async () => {
    await visit(page, "/models");
    assert.ok((await cardIds(page)).includes(MODEL));
    await docShot(page, "model-list");
  });

  step("no script errors on the pages", [], async () => {
    assert.deepEqual(pageErrors, []);
  });
});
