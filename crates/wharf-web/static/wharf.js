// Wharf: small progressive enhancements. Every page works without this script.
(function () {
  "use strict";

  // Selects that navigate (revision selector) or submit their form (sort order).
  document.querySelectorAll("select[data-navigate]").forEach(function (sel) {
    sel.addEventListener("change", function () {
      if (sel.value) { window.location.href = sel.value; }
    });
  });
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () { if (sel.form) { sel.form.submit(); } });
  });

  // Forms that ask before doing something destructive.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });

  // Typed confirmation: the delete button stays disabled until the name matches.
  document.querySelectorAll("input[data-expect]").forEach(function (input) {
    var button = input.form && input.form.querySelector("button[type=submit]");
    if (!button) { return; }
    var check = function () { button.disabled = input.value.trim() !== input.getAttribute("data-expect"); };
    input.addEventListener("input", check);
    check();
  });

  // Upload: drag and drop, file list, and progress through XHR upload events.
  var uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    var drop = document.getElementById("upload-drop");
    var input = document.getElementById("upload-input");
    var list = document.getElementById("upload-files");
    var progress = document.getElementById("upload-progress");
    var status = document.getElementById("upload-status");
    var submit = document.getElementById("upload-submit");
    var showFiles = function () {
      list.textContent = "";
      Array.prototype.forEach.call(input.files, function (f) {
        var li = document.createElement("li");
        li.textContent = f.name + " (" + f.size + " bytes)";
        list.appendChild(li);
      });
    };
    input.addEventListener("change", showFiles);
    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.remove("dragging"); });
    });
    drop.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        showFiles();
      }
    });
    uploadForm.addEventListener("submit", function (e) {
      if (!window.XMLHttpRequest || !window.FormData) { return; }
      e.preventDefault();
      if (!input.files.length) { status.textContent = "Choose at least one file."; return; }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", uploadForm.action);
      progress.hidden = false;
      submit.disabled = true;
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) {
          var pct = Math.round(ev.loaded * 100 / ev.total);
          progress.value = pct;
          status.textContent = "Uploading… " + pct + "%";
        }
      });
      xhr.upload.addEventListener("load", function () { status.textContent = "Committing…"; });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          window.location.href = xhr.responseURL || uploadForm.action;
          return;
        }
        var message = "Upload failed (" + xhr.status + ").";
        try {
          var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
          var m = doc.querySelector(".error-message");
          if (m) { message = m.textContent; }
        } catch (err) { /* keep the generic message */ }
        status.textContent = message;
        submit.disabled = false;
      });
      xhr.addEventListener("error", function () {
        status.textContent = "The connection failed during the upload.";
        submit.disabled = false;
      });
      xhr.send(new FormData(uploadForm));
    });
  }

  // Editor: live preview of a README (rendered and sanitized by the server).
  var preview = document.getElementById("preview");
  var editor = document.getElementById("editor");
  if (preview && editor && window.fetch) {
    var form = editor.form;
    var timer = null;
    var render = function () {
      var body = new URLSearchParams();
      body.set("_csrf", form.querySelector("input[name=_csrf]").value);
      body.set("content", editor.value);
      body.set("repo", form.getAttribute("data-repo") || "");
      body.set("rev", form.getAttribute("data-rev") || "main");
      fetch("/-/preview", { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { preview.innerHTML = html; })
        .catch(function () { preview.textContent = "The preview is not available."; });
    };
    editor.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, 300);
    });
    var refresh = document.getElementById("preview-refresh");
    if (refresh) { refresh.addEventListener("click", render); }
    render();
  }

  // Inference widget: the form posts with fetch and the answer is drawn in place; text
  // generation streams its tokens. Model output only ever reaches the page as textContent.
  var widgetForm = document.getElementById("widget-form");
  if (widgetForm && window.fetch && window.URLSearchParams && window.FormData) {
    setUpWidget(widgetForm);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function fieldValue(form, name) {
    var f = form.querySelector("[name=" + name + "]");
    return f ? f.value : "";
  }

  function setUpWidget(form) {
    var task = form.getAttribute("data-task");
    var result = document.getElementById("widget-result");
    var status = document.getElementById("widget-status");
    var submit = document.getElementById("widget-submit");
    // Examples fill the form in place (without JavaScript they reload the page filled in).
    document.querySelectorAll("a[data-example]").forEach(function (a) {
      a.addEventListener("click", function (e) {
        e.preventDefault();
        [["text", "data-text"], ["context", "data-context"], ["candidate_labels", "data-candidate-labels"],
          ["sentences", "data-sentences"]].forEach(function (pair) {
          var f = form.querySelector("[name=" + pair[0] + "]");
          if (f) { f.value = a.getAttribute(pair[1]) || ""; }
        });
        var multi = form.querySelector("[name=multi_label]");
        if (multi) { multi.checked = a.getAttribute("data-multi-label") === "true"; }
        result.textContent = "";
      });
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var stream = task === "text-generation" && !!window.TextDecoder && !!window.ReadableStream;
      var body = new URLSearchParams(new FormData(form));
      result.textContent = "";
      status.textContent = "Computing…";
      submit.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "Accept": stream ? "text/event-stream" : "application/json", "X-CSRF-Token": fieldValue(form, "_csrf") }
      }).then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (r.ok && type.indexOf("text/event-stream") === 0) {
          return readTokens(r, form, result);
        }
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok || (data && data.error)) {
            throw new Error((data && data.error) || ("The server answered " + r.status + "."));
          }
          drawAnswer(task, form, data, result);
        });
      }).then(function () {
        status.textContent = "";
      }).catch(function (err) {
        result.textContent = "";
        var p = el("p", "widget-error", err.message || "The request failed.");
        p.setAttribute("data-testid", "widget-error");
        result.appendChild(p);
        status.textContent = "";
      }).then(function () {
        submit.disabled = false;
      });
    });
  }

  // Server-sent token events (TGI's format): each token's text is appended as it arrives.
  function readTokens(response, form, result) {
    var out = generationBlock(fieldValue(form, "text"), "");
    result.appendChild(out.block);
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var handle = function (frame) {
      frame.split("\n").forEach(function (line) {
        if (line.indexOf("data:") !== 0) { return; }
        var event = JSON.parse(line.slice(5));
        if (event.error) { throw new Error(event.error); }
        if (event.token && !event.token.special) {
          out.generated.appendChild(document.createTextNode(event.token.text));
        }
      });
    };
    var pump = function () {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          if (buffer.trim()) { handle(buffer); }
          return undefined;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        var frames = buffer.split("\n\n");
        buffer = frames.pop();
        frames.forEach(handle);
        return pump();
      });
    };
    return pump();
  }

  function generationBlock(prompt, added) {
    var block = el("p", "generation");
    block.appendChild(el("span", "prompt", prompt));
    var generated = el("span", "generated", added);
    generated.setAttribute("data-testid", "widget-generated");
    block.appendChild(generated);
    return { block: block, generated: generated };
  }

  // A list answer, or the first of a list of lists (one per input).
  function firstList(data) {
    if (!Array.isArray(data)) { return []; }
    return Array.isArray(data[0]) ? data[0] : data;
  }

  function lines(text) {
    return text.split("\n").map(function (s) { return s.trim(); }).filter(function (s) { return s; });
  }

  function scoreBars(rows) {
    var list = el("ol", "scores");
    rows.forEach(function (r) {
      var score = Number(r.score) || 0;
      var li = el("li", "score-row");
      li.appendChild(el("span", "score-label", r.label));
      li.appendChild(el("span", "score-value num", score.toFixed(3)));
      var bar = el("span", "score-bar");
      var fill = el("span", "score-fill");
      fill.style.width = (Math.round(Math.max(0, Math.min(1, score)) * 1000) / 10) + "%";
      bar.appendChild(fill);
      li.appendChild(bar);
      list.appendChild(li);
    });
    return list;
  }

  // The text with each entity in a <mark> labelled by its group (offsets count characters).
  function entities(text, items) {
    var chars = Array.from(text);
    var p = el("p", "entities");
    var at = 0;
    items.slice().sort(function (a, b) { return a.start - b.start; }).forEach(function (item) {
      var start = item.start;
      var end = Math.min(item.end, chars.length);
      if (!(start >= at && start < end)) { return; }
      if (start > at) { p.appendChild(document.createTextNode(chars.slice(at, start).join(""))); }
      var group = item.entity_group || item.entity || "";
      var mark = el("mark", "entity", chars.slice(start, end).join(""));
      mark.setAttribute("data-entity", group);
      mark.appendChild(el("span", "entity-label", group));
      p.appendChild(mark);
      at = end;
    });
    if (at < chars.length) { p.appendChild(document.createTextNode(chars.slice(at).join(""))); }
    return p;
  }

  function shapeOf(data) {
    var shape = [];
    for (var v = data; Array.isArray(v); v = v[0]) { shape.push(v.length); if (!v.length) { break; } }
    return shape;
  }

  function drawAnswer(task, form, data, result) {
    var rows = null;
    if (task === "fill-mask") {
      rows = firstList(data).map(function (d) { return { label: d.token_str, score: d.score }; });
    } else if (task === "text-classification" || task === "zero-shot-classification") {
      rows = data && Array.isArray(data.labels)
        ? data.labels.map(function (l, i) { return { label: l, score: data.scores[i] }; })
        : firstList(data).map(function (d) { return { label: d.label, score: d.score }; });
    } else if (task === "sentence-similarity") {
      var sentences = lines(fieldValue(form, "sentences"));
      rows = firstList(data).map(function (s, i) { return { label: sentences[i] || "", score: s }; });
    }
    if (rows) {
      result.appendChild(scoreBars(rows));
    } else if (task === "token-classification") {
      result.appendChild(entities(fieldValue(form, "text"), firstList(data)));
    } else if (task === "question-answering") {
      var best = Array.isArray(data) ? data[0] : data;
      var p = el("p", "qa-answer");
      p.appendChild(el("span", "label", "Answer"));
      p.appendChild(el("strong", "answer-text", best && best.answer));
      p.appendChild(el("span", "muted num", best ? Number(best.score).toFixed(3) : ""));
      result.appendChild(p);
    } else if (task === "feature-extraction") {
      var flat = [data].flat(Infinity).slice(0, 6).map(function (x) { return Number(x).toFixed(4); });
      var v = el("p", "vector");
      v.appendChild(el("span", "label", "Vector"));
      v.appendChild(el("span", "vector-shape", shapeOf(data).join(" × ")));
      result.appendChild(v);
      var values = el("p", "muted vector-values");
      values.appendChild(el("code", null, "[" + flat.join(", ") + ", …]"));
      result.appendChild(values);
    } else if (task === "text-generation") {
      var out = Array.isArray(data) ? data[0] : data;
      // Without return_full_text the answer is only what the model added to the prompt.
      result.appendChild(generationBlock(fieldValue(form, "text"), (out && out.generated_text) || "").block);
    } else {
      result.appendChild(el("pre", "snippet", JSON.stringify(data, null, 2)));
    }
  }
})();
