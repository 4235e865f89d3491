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
})();
