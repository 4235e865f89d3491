"""The web interface, driven as a browser would drive it (forms, cookies, redirects), without
JavaScript: sign-up and log-in, tokens, creating a repo, uploading, editing the card with its
metadata form, the card, listing, history and diff pages, privacy, safe rendering and CSRF.
"""
import json
import re
import uuid

import pytest
import requests

CSRF_RE = re.compile(r'name="_csrf" value="([^"]+)"')


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Browser:
    """A cookie-keeping client that reads the CSRF token of the forms it is shown."""

    def __init__(self, hub):
        self.hub = hub
        self.s = requests.Session()

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 60)
        return self.s.get(self.hub.url(path), **kw)

    def post(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 120)
        return self.s.post(self.hub.url(path), **kw)

    def csrf(self, path):
        r = self.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        m = CSRF_RE.search(r.text)
        assert m, f"no CSRF field on {path}"
        return m.group(1)

    def submit(self, form_path, action=None, data=None, **kw):
        """GETs the page holding the form, then POSTs it with the page's CSRF token."""
        token = self.csrf(form_path)
        body = {"_csrf": token, **(data or {})}
        return self.post(action or form_path, data=body, **kw)

    def log_in(self, name, password):
        r = self.submit("/login", data={"username": name, "password": password, "next": "/"})
        assert r.status_code == 303, (r.status_code, r.text[:300])
        assert "wharf_session" in self.s.cookies
        return r


def without_spans(html):
    """The HTML with the highlighter's spans taken out (they split tokens apart)."""
    return re.sub(r'<span class="[^"]*">|</span>', "", html)


def card_section(html):
    start = html.index('id="model-card"')
    return html[start:html.index("</article>", start)]


@pytest.fixture(scope="module")
def carol(hub):
    """A user who signed up through /join, with a logged-in browser."""
    b = Browser(hub)
    name = unique("carol")
    r = b.submit("/join", data={"username": name, "email": f"{name}@example.com", "password": "carol-pass-123"})
    assert r.status_code == 303, (r.status_code, r.text[:500])
    cookie = r.headers.get("Set-Cookie", "")
    assert "wharf_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    b.name = name
    b.password = "carol-pass-123"
    return b


@pytest.fixture(scope="module")
def model(hub, carol):
    """A public model made through the web forms: created, uploaded to, and given a card."""
    name = unique("webmodel")
    r = carol.submit("/new", data={"owner": carol.name, "name": name, "type": "model", "visibility": "public"})
    assert r.status_code == 303, (r.status_code, r.text[:500])
    repo = f"{carol.name}/{name}"
    assert r.headers["Location"] == f"/{repo}"

    # Upload through the multipart form (the CSRF field comes first, as the page sends it).
    token = carol.csrf(f"/{repo}/upload/main")
    files = [
        ("files", ("config.json", b'{"model_type": "bert"}\n', "application/json")),
        ("files", ("notes.txt", b"line one\nline two\n", "text/plain")),
    ]
    r = carol.post(f"/{repo}/upload/main", data={"_csrf": token, "summary": "Upload config via web"}, files=files)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert r.headers["Location"] == f"/{repo}/tree/main"

    # Create the card with the metadata form, then edit it through the edit form.
    r = carol.submit(f"/{repo}/new/main?filename=README.md", action=f"/{repo}/new/main", data={
        "path": "README.md",
        "content": "# Hello card\r\n\r\nA picture: ![diagram](img/diagram.png)\r\n",
        "license": "mit",
        "pipeline_tag": "text-classification",
        "tags": "web-test, demo",
        "summary": "Add model card",
    })
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert r.headers["Location"] == f"/{repo}/blob/main/README.md"

    page = carol.get(f"/{repo}/edit/main/README.md")
    assert page.status_code == 200
    assert 'id="meta-license"' in page.text and 'id="meta-pipeline-tag"' in page.text
    token = CSRF_RE.search(page.text).group(1)
    parent = re.search(r'name="parent" value="([0-9a-f]{40})"', page.text).group(1)
    readme = hub.request("GET", f"/{repo}/resolve/main/README.md").text
    assert "license: mit" in readme and "pipeline_tag: text-classification" in readme, readme
    r = carol.post(f"/{repo}/edit/main/README.md", data={
        "_csrf": token, "parent": parent,
        "content": readme.replace("A picture", "An edited picture"),
        "license": "mit", "orig_license": "mit",
        "pipeline_tag": "text-classification", "orig_pipeline_tag": "text-classification",
        "tags": "web-test, demo, extra", "orig_tags": "web-test, demo",
        "summary": "Edit model card",
    })
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return repo


def test_log_out_and_back_in(hub, carol):
    other = Browser(hub)
    other.log_in(carol.name, carol.password)
    assert carol.name in other.get("/").text
    r = other.submit("/", action="/logout")
    assert r.status_code == 303
    assert 'href="/login"' in other.get("/").text
    # Log-in by e-mail address, and a wrong password is refused.
    other.log_in(f"{carol.name}@example.com", carol.password)
    bad = Browser(hub).submit("/login", data={"username": carol.name, "password": "wrong-password"})
    assert bad.status_code == 401 and "wharf_session" not in bad.headers.get("Set-Cookie", "")


def test_token_page_creates_a_working_token(hub, carol):
    r = carol.submit("/settings/tokens", data={"label": "laptop", "role": "write"})
    assert r.status_code == 200, r.text[:500]
    m = re.search(r'id="token-value"[^>]*value="(hf_[A-Za-z]+)"', r.text)
    assert m, r.text[:2000]
    token = m.group(1)
    who = hub.request("GET", "/api/whoami-v2", token)
    assert who.status_code == 200 and who.json()["name"] == carol.name
    # The value is shown once: the list shows only the name.
    listing = carol.get("/settings/tokens").text
    assert "laptop" in listing and token not in listing
    token_id = re.search(r'data-token-id="(\d+)"', listing).group(1)
    r = carol.submit("/settings/tokens", action="/settings/tokens/revoke", data={"id": token_id})
    assert r.status_code == 303
    assert hub.request("GET", "/api/whoami-v2", token).status_code == 401


def test_card_page_shows_rendered_card_and_metadata(hub, carol, model):
    r = carol.get(f"/{model}")
    assert r.status_code == 200
    html = r.text
    card = card_section(html)
    assert "Hello card</h1>" in card
    assert "An edited picture" in card
    assert f'src="/{model}/resolve/main/img/diagram.png"' in card
    for tag in ("text-classification", "license:mit", "web-test", "extra"):
        assert f">{tag}</a>" in html, tag
    assert f'pipeline("text-classification", model="{model}")' in html.replace("&quot;", '"').replace("&#34;", '"')
    assert f"git clone {hub.endpoint}/{model}" in html
    assert f"hf download {model}" in html


def test_listing_filters_and_facets(hub, carol, model):
    r = carol.get("/models?pipeline_tag=text-classification")
    assert r.status_code == 200
    assert f'data-repo-id="{model}"' in r.text
    assert 'id="search"' in r.text and 'class="repo-card"' in r.text
    assert 'data-facet="license"' in r.text
    r = carol.get("/models?license=mit&search=" + model.split("/")[1])
    assert f'data-repo-id="{model}"' in r.text
    r = carol.get("/models?pipeline_tag=translation")
    assert f'data-repo-id="{model}"' not in r.text
    # Junk in the query is not an error.
    assert carol.get("/models?p=zzz&sort=nonsense").status_code == 200


def test_tree_blob_commits_and_diff(hub, carol, model):
    tree = carol.get(f"/{model}/tree/main")
    assert tree.status_code == 200
    assert 'id="file-list"' in tree.text and 'id="branch-select"' in tree.text
    for f in ("config.json", "notes.txt", "README.md", ".gitattributes"):
        assert f">{f}</a>" in tree.text, f
    assert "Upload config via web" in tree.text or "Edit model card" in tree.text

    blob = carol.get(f"/{model}/blob/main/notes.txt")
    assert blob.status_code == 200
    assert "line two" in blob.text and f'href="/{model}/resolve/main/notes.txt"' in blob.text

    commits = carol.get(f"/{model}/commits/main")
    assert commits.status_code == 200 and 'id="commit-list"' in commits.text
    for title in ("Upload config via web", "Add model card", "Edit model card", "initial commit"):
        assert title in commits.text, title
    history = carol.get(f"/{model}/commits/main?path=notes.txt").text
    assert "Upload config via web" in history and "Edit model card" not in history

    newest = re.search(rf'href="/{re.escape(model)}/commit/([0-9a-f]{{40}})"', commits.text).group(1)
    diff = carol.get(f"/{model}/commit/{newest}")
    assert diff.status_code == 200
    assert 'class="diff"' in diff.text
    assert '<tr class="add">' in diff.text and '<tr class="del">' in diff.text
    assert "An edited picture" in diff.text

    sha_list = re.findall(rf'href="/{re.escape(model)}/commit/([0-9a-f]{{40}})"', commits.text)
    oldest = sha_list[-1]
    compare = carol.get(f"/{model}/compare/{oldest}...main")
    assert compare.status_code == 200 and "config.json" in compare.text


def test_private_repo_is_invisible_to_others(hub, carol):
    name = unique("secret")
    r = carol.submit("/new", data={"owner": carol.name, "name": name, "type": "model", "visibility": "private"})
    assert r.status_code == 303
    repo = f"{carol.name}/{name}"
    sha = re.search(rf'href="/{re.escape(repo)}/commit/([0-9a-f]{{40}})"', carol.get(f"/{repo}/commits/main").text).group(1)
    paths = [f"/{repo}", f"/{repo}/tree/main", f"/{repo}/blob/main/.gitattributes", f"/{repo}/commits/main",
             f"/{repo}/settings", f"/{repo}/upload/main", f"/{repo}/edit/main/.gitattributes",
             f"/{repo}/commits/main?path=.gitattributes", f"/{repo}/commit/{sha}", f"/{repo}/compare/{sha}...main",
             f"/{repo}/new/main", f"/{repo}/tree/{sha}"]
    assert carol.get(f"/{repo}").status_code == 200
    assert f'data-repo-id="{repo}"' in carol.get(f"/models?search={name}").text

    bob = Browser(hub)
    bob.log_in("bob", "bob-pass-123")
    anon = Browser(hub)
    for who in (bob, anon):
        for path in paths:
            r = who.get(path)
            if who is anon and r.status_code == 303:
                continue  # pages that need an account send visitors to log in first
            assert r.status_code == 404, (path, r.status_code)
            assert r.headers["Content-Type"].startswith("text/html")
        # Forms posted to it look missing too (or send visitors to log in first).
        token = who.csrf("/login") if who is anon else who.csrf("/")
        for path in (f"/{repo}/settings", f"/{repo}/delete/main/.gitattributes", f"/{repo}/new/main"):
            r = who.post(path, data={"_csrf": token, "action": "delete", "confirm": repo})
            assert r.status_code in ((303, 404) if who is anon else (404,)), (path, r.status_code)
        listing = who.get(f"/models?search={name}").text
        assert repo not in listing
        assert repo not in who.get(f"/{carol.name}").text
        assert repo not in who.get("/").text


def test_card_html_is_inert(hub, carol, model):
    evil = (
        "# Evil\n\n<script>alert('x')</script>\n\n"
        '<img src="x.png" onerror="alert(1)">\n\n'
        "[click](javascript:alert(2))\n\n"
        '<a href="javascript:alert(3)" onclick="alert(4)">link</a>\n\n'
        '<iframe src="https://example.com"></iframe>\n'
    )
    page = carol.get(f"/{model}/edit/main/README.md").text
    token = CSRF_RE.search(page).group(1)
    r = carol.post(f"/{model}/edit/main/README.md", data={"_csrf": token, "content": evil, "summary": "Evil card"})
    assert r.status_code == 303, r.text[:500]
    html = carol.get(f"/{model}").text
    card = card_section(html).lower()
    assert "<script" not in card
    assert "javascript:" not in card
    assert "<iframe" not in card
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", card), card
    assert "evil</h1>" in card
    # The live preview goes through the same sanitizer.
    preview = carol.post("/-/preview", data={"_csrf": token, "content": evil}).text.lower()
    assert "<script" not in preview and "javascript:" not in preview
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", preview)
    # The blob view shows the text, escaped.
    blob = carol.get(f"/{model}/blob/main/README.md").text
    assert "&lt;script&gt;" in without_spans(blob) or "&#60;script&#62;" in blob
    assert "<script>alert" not in blob


def test_post_without_csrf_token_is_refused(hub, carol):
    name = unique("nocsrf")
    r = carol.post("/new", data={"owner": carol.name, "name": name, "type": "model"})
    assert r.status_code == 403
    r = carol.post("/new", data={"_csrf": "forged", "owner": carol.name, "name": name, "type": "model"})
    assert r.status_code == 403
    assert hub.request("GET", f"/api/models/{carol.name}/{name}").status_code == 404
    assert carol.post("/settings/tokens", data={"label": "x"}).status_code == 403
    assert carol.post("/logout", data={}).status_code == 403
    assert Browser(hub).post("/login", data={"username": "bob", "password": "bob-pass-123"}).status_code == 403


def test_upload_without_csrf_is_refused(hub, carol, model):
    r = carol.post(f"/{model}/upload/main", files=[("files", ("x.txt", b"x"))])
    assert r.status_code == 403


def test_errors_are_html_pages(hub, carol):
    r = carol.get("/nobody-here/nothing-here")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    r = carol.get(f"/{carol.name}/missing-repo/tree/main")
    assert r.status_code == 404
    r = carol.get("/no-such-user-xyz")
    assert r.status_code == 404


def test_settings_rename_and_delete(hub, carol):
    name = unique("moveme")
    assert carol.submit("/new", data={"owner": carol.name, "name": name, "visibility": "public"}).status_code == 303
    repo = f"{carol.name}/{name}"
    r = carol.submit(f"/{repo}/settings", data={"action": "visibility", "visibility": "private"})
    assert r.status_code == 303
    assert 'data-testid="private-badge"' in carol.get(f"/{repo}").text
    new_name = name + "-renamed"
    r = carol.submit(f"/{repo}/settings", data={"action": "move", "new_owner": carol.name, "new_name": new_name})
    assert r.status_code == 303 and r.headers["Location"] == f"/{carol.name}/{new_name}"
    moved = f"{carol.name}/{new_name}"
    r = carol.submit(f"/{moved}/settings", data={"action": "delete", "confirm": "wrong"})
    assert r.status_code == 422
    r = carol.submit(f"/{moved}/settings", data={"action": "delete", "confirm": moved})
    assert r.status_code == 303
    assert carol.get(f"/{moved}").status_code == 404


def test_git_and_resolve_paths_still_reach_the_api(hub, carol, model):
    r = hub.request("GET", f"/{model}/resolve/main/notes.txt")
    assert r.status_code == 200 and r.content == b"line one\nline two\n"
    r = hub.request("GET", f"/{model}/info/refs?service=git-upload-pack")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"


def test_dataset_pages_live_under_datasets(hub, carol):
    name = unique("webdata")
    r = carol.submit("/new", data={"owner": carol.name, "name": name, "type": "dataset", "visibility": "public",
                                   "license": "cc-by-4.0"})
    assert r.status_code == 303 and r.headers["Location"] == f"/datasets/{carol.name}/{name}"
    repo = f"datasets/{carol.name}/{name}"
    page = carol.get(f"/{repo}")
    assert page.status_code == 200
    assert "Dataset card" in page.text and "license:cc-by-4.0" in page.text
    assert f'load_dataset("{carol.name}/{name}")' in page.text.replace("&quot;", '"').replace("&#34;", '"')
    tree = carol.get(f"/{repo}/tree/main")
    assert tree.status_code == 200 and ">README.md</a>" in tree.text
    assert carol.get(f"/{repo}/blob/main/README.md").status_code == 200
    assert carol.get(f"/{repo}/commits/main").status_code == 200
    assert f'data-repo-id="{carol.name}/{name}"' in carol.get("/datasets?license=cc-by-4.0").text
    # The same name as a model does not exist.
    assert carol.get(f"/{carol.name}/{name}").status_code == 404
    # Downloads under the dataset prefix still reach the API.
    r = hub.request("GET", f"/{repo}/resolve/main/README.md")
    assert r.status_code == 200 and b"license: cc-by-4.0" in r.content


def test_lfs_and_safetensors_files(hub, carol, model):
    import hashlib
    import json
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                         "__metadata__": {"format": "pt"}}).encode()
    weights = struct.pack("<Q", len(header)) + header + bytes(24)
    blob = bytes(range(256)) * 8
    token = carol.csrf(f"/{model}/upload/main")
    r = carol.post(f"/{model}/upload/main", data={"_csrf": token, "dir": "weights"}, files=[
        ("files", ("model.safetensors", weights, "application/octet-stream")),
        ("files", ("blob.bin", blob, "application/octet-stream")),
    ])
    assert r.status_code == 303 and r.headers["Location"] == f"/{model}/tree/main/weights", r.text[:300]

    tree = carol.get(f"/{model}/tree/main/weights").text
    assert ">model.safetensors</a>" in tree and ">blob.bin</a>" in tree and "LFS" in tree

    page = carol.get(f"/{model}/blob/main/weights/blob.bin").text
    assert hashlib.sha256(blob).hexdigest() in page
    assert f'href="/{model}/resolve/main/weights/blob.bin?download=true"' in page
    assert hub.request("GET", f"/{model}/resolve/main/weights/blob.bin").content == blob

    page = carol.get(f"/{model}/blob/main/weights/model.safetensors").text
    assert 'data-testid="safetensors-header"' in page and "<code>[2, 3]</code>" in page

    card = carol.get(f"/{model}").text
    assert "6 params" in card and "F32" in card


HIGHLIGHTED_PY = (
    '"""Docstring with <b>markup</b>."""\n'
    "import os\n\n"
    "def greet(name: str) -> str:\n"
    "    # a comment\n"
    "    return f'<script>alert({name})</script>'\n"
)


def test_code_is_highlighted_and_escaped(hub, carol):
    name = unique("hl")
    assert carol.submit("/new", data={"owner": carol.name, "name": name, "visibility": "public"}).status_code == 303
    repo = f"{carol.name}/{name}"
    card = "# Highlight\n\n```python\nx = '<script>alert(1)</script>'  # note\n```\n\n```nolang\n<i>plain</i>\n```\n"
    token = carol.csrf(f"/{repo}/upload/main")
    files = [
        ("files", ("src/greet.py", HIGHLIGHTED_PY.encode(), "text/x-python")),
        ("files", ("README.md", card.encode(), "text/markdown")),
        ("files", ("notes.txt", b"<script>alert(2)</script>\n", "text/plain")),
    ]
    r = carol.post(f"/{repo}/upload/main", data={"_csrf": token, "summary": "code"}, files=files)
    assert r.status_code == 303, (r.status_code, r.text[:500])

    blob = carol.get(f"/{repo}/blob/main/src/greet.py").text
    assert 'data-language="Python"' in blob
    assert '<span class="hl-' in blob and "hl-comment" in blob and "hl-string" in blob
    assert "<script>alert" not in blob and "<b>markup" not in blob
    assert "&lt;script&gt;alert(" in without_spans(blob)
    assert 'id="L6"' in blob and 'id="L7"' not in blob
    assert "style=" not in blob.split('data-testid="code"')[1]
    # Cached for the next view: the same page.
    assert carol.get(f"/{repo}/blob/main/src/greet.py").text.count("hl-string") == blob.count("hl-string")

    plain = carol.get(f"/{repo}/blob/main/notes.txt").text
    assert "data-language" not in plain and "hl-" not in plain.split('data-testid="code"')[1]
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in plain

    section = card_section(carol.get(f"/{repo}").text)
    assert '<code class="language-python"><span class="hl-' in section
    assert "<script" not in section.lower() and "&lt;script&gt;" in without_spans(section)
    assert '<code class="language-nolang">&lt;i&gt;plain&lt;/i&gt;' in section
    assert "style=" not in section

    css = carol.get("/-/static/wharf.css")
    assert css.status_code == 200 and ".hl-comment" in css.text and ".hl-string" in css.text


def test_wrong_method_gets_an_error_page(hub, carol, model):
    for method, path in (("DELETE", "/models"), ("PUT", f"/{model}"), ("POST", f"/{model}/tree/main")):
        r = carol.s.request(method, hub.url(path), allow_redirects=False, timeout=60)
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")
        assert r.headers.get("X-Error-Message"), r.headers
        assert "GET" in r.headers.get("Allow", ""), r.headers
        assert "405" in r.text


# --- what any visitor can make the server do, bounded --------------------------------------------
# Pages open to everyone cost bounded work, whatever the repository holds; the regressions below
# assert on the limits' visible behaviour (never on timings).

def safetensors_file(n_tensors):
    import struct

    header = {f"layer.{i}.weight": {"dtype": "F16", "shape": [2, 2], "data_offsets": [8 * i, 8 * i + 8]}
              for i in range(n_tensors)}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(8 * n_tensors)


def test_commit_page_withholds_files_too_large_to_diff(hub):
    repo = hub.create_repo(hub.alice, prefix="bigdiff")
    big = lambda tag: "".join(f"{tag} line {i} of some text\n" for i in range(30_000)).encode()  # noqa: E731
    hub.commit_ok(repo, [hub.op_file("a.txt", big("a")), hub.op_file("b.txt", big("b")),
                         hub.op_file("c.txt", b"c\n")], hub.alice)
    sha = hub.commit_ok(repo, [hub.op_file("a.txt", big("A")), hub.op_file("b.txt", big("B")),
                               hub.op_file("c.txt", b"C\n")], hub.alice)
    anon = Browser(hub)
    for view in range(2):
        page = anon.get(f"/{repo}/commit/{sha}")
        assert page.status_code == 200, page.text[:300]
        notes = re.findall(r'data-testid="diff-note">([^<]*)<', page.text)
        assert len(notes) == 2 and all(n.startswith("Diff too large to show") for n in notes), notes
        # The small file still gets its patch.
        assert "<pre>+C</pre>" in page.text
    parent = re.search(rf'parent <a class="sha" href="/{re.escape(repo)}/commit/([0-9a-f]{{40}})"', page.text).group(1)
    compare = anon.get(f"/{repo}/compare/{parent}...{sha}")
    assert compare.status_code == 200
    assert len(re.findall(r'data-testid="diff-note">Diff too large to show', compare.text)) == 2


def test_one_safetensors_header_behind_many_paths_is_counted_once(hub, carol):
    name = unique("manypaths")
    assert carol.submit("/new", data={"owner": carol.name, "name": name, "visibility": "public"}).status_code == 303
    repo = f"{carol.name}/{name}"
    weights = safetensors_file(4000)  # a header of about 300 KB
    token = carol.csrf(f"/{repo}/upload/main")
    r = carol.post(f"/{repo}/upload/main", data={"_csrf": token},
                   files=[("files", ("model.safetensors", weights, "application/octet-stream"))])
    assert r.status_code == 303, r.text[:300]
    token_value = carol.submit("/settings/tokens", data={"label": "many-paths", "role": "write"}).text
    api_token = re.search(r'id="token-value"[^>]*value="(hf_[A-Za-z]+)"', token_value).group(1)
    oid = hub.sha256(weights)
    ops = [hub.op_lfs(f"copies/{i:03d}.safetensors", oid, len(weights)) for i in range(200)]
    hub.commit_ok(repo, ops, api_token, summary="200 paths to one file")

    anon = Browser(hub)
    for view in range(2):
        page = anon.get(f"/{repo}")
        assert page.status_code == 200
        basis = re.search(r'data-testid="params-basis" data-files="(\d+)" data-headers="(\d+)"', page.text)
        assert basis and basis.groups() == ("201", "1"), page.text[:2000]
        assert 'data-testid="params-incomplete"' not in page.text


def test_preview_is_for_signed_in_users_and_small_texts(hub, carol):
    anon = Browser(hub)
    token = anon.csrf("/login")
    r = anon.post("/-/preview", data={"_csrf": token, "content": "# hi"})
    assert r.status_code == 401 and r.headers["Content-Type"].startswith("text/html")
    token = carol.csrf("/")
    r = carol.post("/-/preview", data={"_csrf": token, "content": "---\nlicense: mit\n---\n# hi"})
    assert r.status_code == 200 and "hi</h1>" in r.text and "license" not in r.text
    r = carol.post("/-/preview", data={"_csrf": token, "content": "x" * ((1 << 20) + 1)})
    assert r.status_code == 413


def test_token_names_follow_the_hubs_rule(hub, carol):
    r = carol.submit("/settings/tokens", data={"label": "", "role": "read"})
    assert r.status_code == 200, r.text[:300]
    assert f"{carol.name}-read" in r.text
    accented = "é" * 100  # 100 characters, 200 bytes
    r = carol.submit("/settings/tokens", data={"label": accented, "role": "read"})
    assert r.status_code == 200 and accented in r.text
    r = carol.submit("/settings/tokens", data={"label": "x" * 101, "role": "read"})
    assert r.status_code == 400


def test_gated_repo_shows_card_and_files_but_not_contents(hub, carol):
    name = unique("gated")
    r = carol.submit("/new", data={"owner": carol.name, "name": name, "visibility": "public", "license": "mit"})
    assert r.status_code == 303
    repo = f"{carol.name}/{name}"
    sha = re.search(rf'href="/{re.escape(repo)}/commit/([0-9a-f]{{40}})"', carol.get(f"/{repo}/commits/main").text).group(1)
    assert carol.submit(f"/{repo}/settings", data={"action": "gated", "gated": "manual"}).status_code == 303
    bob = Browser(hub)
    bob.log_in("bob", "bob-pass-123")
    for who in (Browser(hub), bob):
        card = who.get(f"/{repo}")
        assert card.status_code == 200, card.text[:300]
        assert f"{name}</h1>" in card_section(card.text)
        tree = who.get(f"/{repo}/tree/main")
        assert tree.status_code == 200 and ">README.md</a>" in tree.text
        assert who.get(f"/{repo}/commits/main").status_code == 200
        for path in (f"/{repo}/blob/main/README.md", f"/{repo}/blob/main/.gitattributes", f"/{repo}/commit/{sha}",
                     f"/{repo}/compare/{sha}...main"):
            r = who.get(path)
            assert r.status_code == 403, (path, r.status_code)
            assert "license: mit" not in r.text


def test_forms_refuse_oversized_and_anonymous_posts(hub, carol, model):
    anon = Browser(hub)
    token = anon.csrf("/login")
    # Just over the small forms' 64 KiB (small enough to be sent whole before the answer).
    r = anon.post("/login", data={"_csrf": token, "username": "bob", "password": "x" * 70_000})
    assert r.status_code == 413
    for path in ("/new", f"/{model}/settings", f"/{model}/new/main", f"/{model}/upload/main",
                 f"/{model}/delete/main/notes.txt", "/settings/tokens"):
        r = anon.post(path, data={"_csrf": token})
        assert r.status_code in (303, 403), (path, r.status_code)
        if r.status_code == 303:
            assert r.headers["Location"].startswith("/login?next="), path
    assert hub.request("GET", f"/{model}/resolve/main/notes.txt").status_code == 200
    # An upload made of countless fields is refused, not read to its end.
    token = carol.csrf(f"/{model}/upload/main")
    fields = [("_csrf", (None, token))] + [(f"junk{i}", (None, "x")) for i in range(1100)]
    r = carol.post(f"/{model}/upload/main", files=fields)
    assert r.status_code == 400 and "too many fields" in r.text


def test_editing_needs_a_branch_and_paths_stay_in_the_repo(hub, carol, model):
    sha = re.search(rf'href="/{re.escape(model)}/commit/([0-9a-f]{{40}})"', carol.get(f"/{model}/commits/main").text).group(1)
    for path in (f"/{model}/edit/{sha}/notes.txt", f"/{model}/new/{sha}", f"/{model}/upload/{sha}",
                 f"/{model}/edit/no-such-branch/notes.txt"):
        r = carol.get(path)
        assert r.status_code == 404, (path, r.status_code)
    for path in ("/tree/main/%2e%2e/x", "/blob/main/..%2fnotes.txt", "/blob/main/.git/config",
                 "/tree/main/a%00b", "/blob/main/%2fetc%2fpasswd"):
        r = carol.get(f"/{model}{path}")
        assert r.status_code in (400, 404, 422), (path, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")


# --- the inference widget on model pages --------------------------------------------------------
# Tiny random-weight models (wharf-inference's `make_tiny_models`, as in test_inference.py) are
# uploaded through the web upload form; the widget's form is then posted as wharf.js posts it
# (`Accept: application/json` or `text/event-stream`) and as a browser without JavaScript does.

@pytest.fixture(scope="module")
def tiny_model_dir():
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    make = root / "target" / "debug" / "examples" / "make_tiny_models"
    if not make.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "wharf-inference", "--example", "make_tiny_models"],
                       cwd=root, check=True, timeout=1800)
    out = Path(tempfile.mkdtemp(prefix="wharf-widget-models-"))
    subprocess.run([str(make), str(out)], check=True, capture_output=True, timeout=300)
    yield out
    shutil.rmtree(out, ignore_errors=True)


def web_model(browser, folder, visibility="public", card=None):
    """Creates a model on /new and uploads a tiny model's files through the upload form."""
    name = unique(folder.name)
    r = browser.submit("/new", data={"owner": browser.name, "name": name, "type": "model", "visibility": visibility})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    repo = f"{browser.name}/{name}"
    files = []
    for path in sorted(folder.iterdir()):
        data = card.encode() if card is not None and path.name == "README.md" else path.read_bytes()
        files.append(("files", (path.name, data, "application/octet-stream")))
    token = browser.csrf(f"/{repo}/upload/main")
    r = browser.post(f"/{repo}/upload/main", data={"_csrf": token, "summary": "Upload the model"}, files=files)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    return repo


def widget_post(browser, repo, data, accept="application/json", csrf=None, **kw):
    """Posts the widget form of `repo` with the CSRF token of its page (or the one given)."""
    if csrf is None:
        csrf = CSRF_RE.search(browser.get(f"/{repo}").text).group(1)
    headers = {"Accept": accept} if accept else {}
    return browser.post(f"/{repo}/widget", data={"_csrf": csrf, **data}, headers=headers, timeout=180, **kw)


@pytest.fixture(scope="module")
def widget_repos(carol, tiny_model_dir):
    names = ["tiny-bert-fill-mask", "tiny-roberta-fill-mask", "tiny-bert-zero-shot", "tiny-bert-question-answering",
             "tiny-bert-token-classification", "tiny-gpt2-text-generation"]
    return {name: web_model(carol, tiny_model_dir / name) for name in names}


def test_widget_fill_mask_answers_json_and_html(carol, widget_repos):
    repo = widget_repos["tiny-bert-fill-mask"]
    page = carol.get(f"/{repo}").text
    assert 'data-testid="widget"' in page and 'data-task="fill-mask"' in page
    assert f'action="/{repo}/widget"' in page
    # The mask token comes from the tokenizer files; the card's example fills the form.
    hint = re.search(r'data-testid="widget-hint">([^<]*)<', page).group(1)
    assert "[MASK]" in hint
    assert ">The goal of life is [MASK].</textarea>" in page

    r = widget_post(carol, repo, {"text": "Paris is the [MASK] of France."})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer) == 5 and all({"token_str", "score", "sequence"} <= set(a) for a in answer)
    assert answer == sorted(answer, key=lambda a: -a["score"])

    # Without JavaScript: the same form gives an HTML page with a score bar per candidate.
    r = widget_post(carol, repo, {"text": "Paris is the [MASK] of France."}, accept=None)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.text.count('class="score-row"') == 5
    for a in answer:
        assert f'<span class="score-value num">{a["score"]:.3f}</span>' in r.text

    # RoBERTa-style models ask for <mask>.
    page = carol.get(f"/{widget_repos['tiny-roberta-fill-mask']}").text
    hint = re.search(r'data-testid="widget-hint">([^<]*)<', page).group(1)
    assert "&lt;mask&gt;" in hint or "&#60;mask&#62;" in hint


def test_widget_zero_shot_question_answering_and_entities(carol, widget_repos):
    repo = widget_repos["tiny-bert-zero-shot"]
    page = carol.get(f"/{repo}").text
    assert 'name="candidate_labels"' in page and 'name="multi_label"' in page
    r = widget_post(carol, repo, {"text": "I love football", "candidate_labels": "sports, politics , music"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert sorted(a["label"] for a in answer) == ["music", "politics", "sports"]
    assert sum(a["score"] for a in answer) == pytest.approx(1.0, abs=1e-4)
    r = widget_post(carol, repo, {"text": "I love football", "candidate_labels": " , "})
    assert r.status_code == 400 and "candidate label" in r.json()["error"]

    repo = widget_repos["tiny-bert-question-answering"]
    page = carol.get(f"/{repo}").text
    assert 'name="context"' in page
    context = "My name is Sarah and I live in London"
    r = widget_post(carol, repo, {"text": "Where does Sarah live?", "context": context})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert context[answer["start"]:answer["end"]] == answer["answer"] and 0 <= answer["score"] <= 1
    r = widget_post(carol, repo, {"text": "Where does Sarah live?", "context": context}, accept=None)
    assert r.status_code == 200 and 'class="qa-answer"' in r.text

    repo = widget_repos["tiny-bert-token-classification"]
    r = widget_post(carol, repo, {"text": context}, accept=None)
    assert r.status_code == 200, r.text[:300]
    assert 'class="entities"' in r.text and "London" in r.text


def test_widget_streams_generated_text(carol, widget_repos):
    repo = widget_repos["tiny-gpt2-text-generation"]
    page = carol.get(f"/{repo}").text
    assert 'data-task="text-generation"' in page
    r = widget_post(carol, repo, {"text": "Hello world", "max_new_tokens": "8"}, accept="text/event-stream",
                    stream=True)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in r.iter_lines(decode_unicode=True) if line.startswith("data:")]
    assert len(events) == 8, events
    assert [e["index"] for e in events] == list(range(1, 9))
    assert all(e["generated_text"] is None for e in events[:-1])
    assert events[-1]["generated_text"] == "".join(e["token"]["text"] for e in events)
    # Without streaming (JSON) the answer is the same: greedy generation is deterministic.
    r = widget_post(carol, repo, {"text": "Hello world", "max_new_tokens": "8"})
    assert r.status_code == 200, r.text
    assert r.json()[0]["generated_text"] == events[-1]["generated_text"]


def test_widget_checks_the_csrf_token(hub, carol, widget_repos):
    repo = widget_repos["tiny-bert-fill-mask"]
    data = {"text": "Paris is the [MASK] of France."}
    r = carol.post(f"/{repo}/widget", data=data, headers={"Accept": "application/json"})
    assert r.status_code == 403 and "error" in r.json()
    r = widget_post(carol, repo, data, csrf="forged")
    assert r.status_code == 403 and "error" in r.json()
    r = widget_post(carol, repo, data, csrf="forged", accept=None)
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("text/html")
    # The token of another visitor does not do either.
    other = Browser(hub)
    token = other.csrf("/login")
    assert widget_post(carol, repo, data, csrf=token).status_code == 403
    # The script may send the token as a header instead.
    token = CSRF_RE.search(carol.get(f"/{repo}").text).group(1)
    r = carol.post(f"/{repo}/widget", data=data, headers={"Accept": "application/json", "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    # Anonymous visitors use public models' widgets with their visitor token.
    anon = Browser(hub)
    r = widget_post(anon, repo, data)
    assert r.status_code == 200 and len(r.json()) == 5


def test_private_models_widget_is_invisible_to_others(hub, carol, tiny_model_dir):
    repo = web_model(carol, tiny_model_dir / "tiny-bert-fill-mask", visibility="private")
    assert 'data-testid="widget"' in carol.get(f"/{repo}").text
    assert widget_post(carol, repo, {"text": "Hello [MASK]."}).status_code == 200
    bob = Browser(hub)
    bob.log_in("bob", "bob-pass-123")
    anon = Browser(hub)
    for who in (bob, anon):
        assert who.get(f"/{repo}").status_code == 404
        token = who.csrf("/login") if who is anon else CSRF_RE.search(who.get("/").text).group(1)
        r = widget_post(who, repo, {"text": "Hello [MASK]."}, csrf=token)
        assert r.status_code == 404 and "error" in r.json()
        assert "Hello" not in r.text
        r = widget_post(who, repo, {"text": "Hello [MASK]."}, csrf=token, accept=None)
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")


def test_widget_absent_when_the_card_turns_inference_off(carol, tiny_model_dir):
    card = (tiny_model_dir / "tiny-bert-fill-mask" / "README.md").read_text()
    repo = web_model(carol, tiny_model_dir / "tiny-bert-fill-mask", card=card.replace("---\n", "---\ninference: false\n", 1))
    page = carol.get(f"/{repo}").text
    assert 'data-testid="widget"' not in page and "id=\"widget-form\"" not in page
    r = widget_post(carol, repo, {"text": "Hello [MASK]."})
    assert r.status_code == 400 and "inference: false" in r.json()["error"]
