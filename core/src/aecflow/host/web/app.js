// The aecflow web page: plain JavaScript over the HTTP API (see docs/web.md).
// The token lives in sessionStorage only (gone when the tab closes) and travels in the
// Authorization header, never in a URL. Views are chosen by the URL's hash:
//   #/            projects          #/p/NAME   a project: upload, search, list
//   #/f/ID        a file            #/dead     dead letters (admins)
"use strict";

(() => {
  const TOKEN_KEY = "aecflow.token";
  const ACTIVE = ["stored", "processing"];
  const POLL_MS = 1000;
  const $ = (selector, root = document) => root.querySelector(selector);
  const main = $("#main");
  let me = null; // GET /v1/me
  let tus = null; // does the host speak tus at /v1/tus/? (asked once)
  let view = 0; // bumped on every navigation: pollers and loaders of older views stop
  let uppy = null;

  // ---- small helpers -------------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }

  function bytes(n) {
    if (n === null || n === undefined) return "";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function number(value) {
    return typeof value === "number" ? value.toLocaleString(undefined, { maximumFractionDigits: 3 }) : String(value ?? "");
  }

  function announce(text) {
    const status = $("#status");
    status.textContent = "";
    setTimeout(() => { status.textContent = text; }, 30);
  }

  function showAlert(text, kind = "error") {
    const box = $("#alert");
    box.textContent = text;
    box.className = kind === "error" ? "alert" : "alert info";
    box.hidden = !text;
  }

  function statusBadge(record) {
    const label = record.deleted_at ? "deleted" : record.status;
    return el("span", { class: `badge ${label}`, text: label });
  }

  // ---- the API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function authHeaders(extra = {}) {
    const t = token();
    return t ? { Authorization: `Bearer ${t}`, ...extra } : extra;
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
    if (response.ok) {
      return response.status === 204 ? null : response.json();
    }
    let code = "http_error";
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) ({ code, message } = body.error);
    } catch (_) { /* not JSON */ }
    if (response.status === 401 && token()) {
      signOut(`Your token was refused (${code}: ${message}). Sign in again.`);
    }
    throw new ApiError(response.status, code, message);
  }

  async function hostSpeaksTus() {
    if (tus === null) {
      try {
        const answer = await fetch("/v1/tus/", { method: "OPTIONS" });
        tus = answer.ok && answer.headers.has("Tus-Resumable");
      } catch (_) {
        tus = false;
      }
    }
    return tus;
  }

  // ---- sign in and out -----------------------------------------------------------------

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    me = null;
    if (uppy) { uppy.cancelAll(); uppy = null; }
    showHeader();
    if (message) showAlert(message);
    if (location.hash !== "#/") location.hash = "#/";
    else render();
  }

  function showHeader() {
    $("#nav").hidden = !me;
    $("#who").hidden = !me;
    $("#nav-dead").hidden = !(me && me.role === "admin");
    if (me) {
      $("#who-text").textContent = `${me.token_name || me.actor} · ${me.role}`;
    }
  }

  function renderSignIn() {
    const input = el("input", {
      id: "token", name: "token", type: "password", autocomplete: "off", required: true,
      spellcheck: "false", "aria-describedby": "token-help",
    });
    const form = el("form", { class: "card signin", "aria-labelledby": "signin-title" },
      el("h1", { id: "signin-title", text: "Sign in" }),
      el("label", { for: "token" }, "API token", input),
      el("p", { id: "token-help", class: "muted" },
        "A token from ", el("code", { text: "aecflow tokens create" }),
        ". It is kept in this tab only and sent in a header, never in a URL."),
      el("button", { type: "submit", class: "primary", text: "Sign in" }),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      try {
        const response = await fetch("/v1/me", { headers: { Authorization: `Bearer ${value}` } });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) {
          const error = body.error || { code: "http_error", message: response.statusText };
          const why = response.status === 401
            ? "That token was not accepted"
            : `Signing in failed (${response.status})`;
          showAlert(`${why}: ${error.message} (${error.code}). Check the token and try again.`);
          input.setAttribute("aria-invalid", "true");
          input.focus();
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, value);
        me = body;
        showAlert("");
        showHeader();
        announce(`Signed in as ${me.token_name || me.actor}`);
        const only = me.projects.length === 1 && me.projects[0] !== "*";
        location.hash = only ? `#/p/${encodeURIComponent(me.projects[0])}` : "#/";
        render();
      } catch (error) {
        showAlert(`The host could not be reached: ${error.message}`);
      }
    });
    main.replaceChildren(form);
    input.focus();
  }

  // ---- projects ------------------------------------------------------------------------

  function renderProjects() {
    const all = me.projects.includes("*");
    const input = el("input", { id: "project-name", name: "project", required: true, pattern: "[^/]+" });
    const form = el("form", { class: "inline" },
      el("label", { for: "project-name" }, "Project name", input),
      el("button", { type: "submit", class: "primary", text: "Open" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      location.hash = `#/p/${encodeURIComponent(input.value.trim())}`;
    });
    const listed = all ? [] : me.projects;
    main.replaceChildren(
      el("h1", { text: "Projects" }),
      listed.length
        ? el("ul", { class: "projects" }, listed.map((name) =>
          el("li", {}, el("a", { href: `#/p/${encodeURIComponent(name)}`, text: name }))))
        : el("p", { class: "muted", text: "This token reaches every project: name one to open it." }),
      all ? form : null,
    );
  }

  // ---- a project: upload and list -------------------------------------------------------

  async function renderProject(project, current) {
    const title = el("h1", { tabindex: "-1" }, "Project ", el("span", { text: project }));
    const canWrite = me.role !== "reader";
    const uploads = el("ul", { class: "uploads", id: "uploads", "aria-label": "Uploads" });
    const picker = el("input", { id: "file-input", type: "file", multiple: true });
    const protocol = el("span", { class: "muted", id: "upload-protocol" });
    const drop = el("div", { class: "drop", id: "drop" },
      el("label", { for: "file-input" }, "Choose files to upload", picker),
      el("p", {}, "or drop them here. ", protocol));
    const uploadCard = canWrite
      ? el("section", { class: "card", "aria-labelledby": "upload-title" },
        el("h2", { id: "upload-title", text: "Upload" }), drop, uploads)
      : null;

    const search = el("input", { id: "search", type: "search", name: "filename", placeholder: "part of a filename" });
    const status = el("select", { id: "filter-status", name: "status" },
      ["", "stored", "processing", "processed", "failed"].map((s) =>
        el("option", { value: s, text: s || "any" })));
    const deleted = el("select", { id: "filter-deleted", name: "deleted" },
      [["exclude", "not deleted"], ["include", "all"], ["only", "deleted only"]].map(([v, t]) =>
        el("option", { value: v, text: t })));
    const filters = el("form", { class: "inline", role: "search", "aria-label": "Find files" },
      el("label", { for: "search" }, "Search", search),
      el("label", { for: "filter-status" }, "Status", status),
      el("label", { for: "filter-deleted" }, "Deleted files", deleted));
    filters.addEventListener("submit", (event) => event.preventDefault());
    const body = el("tbody", { id: "file-rows" });
    const table = el("table", { id: "files" },
      el("caption", { class: "visually-hidden", text: `Files of ${project}` }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "File" }), el("th", { scope: "col", class: "num", text: "Size" }),
        el("th", { scope: "col", text: "Status" }), el("th", { scope: "col", text: "Uploaded" }))),
      body);
    const more = el("button", { type: "button", id: "more", text: "Show more", hidden: true });
    const count = el("p", { class: "muted", id: "file-count", "aria-live": "polite" });

    main.replaceChildren(title, uploadCard,
      el("section", { "aria-labelledby": "files-title" },
        el("h2", { id: "files-title", text: "Files" }), filters, count, table, more));

    let cursor = null;
    let shown = 0;
    let loading = 0;
    async function load(reset) {
      const mine = ++loading;
      const params = new URLSearchParams({ limit: "50", deleted: deleted.value });
      if (search.value.trim()) params.set("filename", search.value.trim());
      if (status.value) params.set("status", status.value);
      if (!reset && cursor) params.set("cursor", cursor);
      let page;
      try {
        page = await api(`/v1/projects/${encodeURIComponent(project)}/files?${params}`);
      } catch (error) {
        if (current === view) showAlert(`Listing files failed: ${error.message}`);
        return;
      }
      if (mine !== loading || current !== view) return;
      if (reset) { body.replaceChildren(); shown = 0; }
      for (const record of page.items) {
        body.append(el("tr", {},
          el("td", {}, el("a", { href: `#/f/${record.id}`, text: record.filename })),
          el("td", { class: "num", text: bytes(record.size) }),
          el("td", {}, statusBadge(record)),
          el("td", { text: when(record.created_at) })));
      }
      shown += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      count.textContent = shown ? `${shown}${cursor ? "+" : ""} file${shown === 1 ? "" : "s"}` : "No files match.";
      // While files of the first page process, refresh it so their status moves on.
      clearTimeout(refresh);
      if (shown === page.items.length && page.items.some((r) => ACTIVE.includes(r.status) && !r.deleted_at)) {
        refresh = setTimeout(() => { if (current === view) load(true); }, 2 * POLL_MS);
      }
    }
    let refresh = null;
    let debounce = null;
    search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => load(true), 250); });
    status.addEventListener("change", () => load(true));
    deleted.addEventListener("change", () => load(true));
    more.addEventListener("click", () => load(false));
    await load(true);
    if (canWrite) await startUppy(project, { picker, drop, uploads, protocol, reload: () => load(true), current });
    title.focus();
  }

  async function startUppy(project, ui) {
    if (!window.AecflowUppy) {
      ui.protocol.textContent = "(the upload component did not load)";
      return;
    }
    const { Uppy, Tus, XHRUpload } = window.AecflowUppy;
    if (uppy) uppy.cancelAll();
    const resumable = await hostSpeaksTus();
    if (ui.current !== view) return;
    uppy = new Uppy({ autoProceed: true, allowMultipleUploadBatches: true });
    // tus answers the last PATCH with the new file's id in a header, not a body: keep it by
    // upload URL for "upload-success", which only sees the URL.
    const tusFileIds = new Map();
    const uploadPath = (url) => new URL(url, window.location.href).pathname;
    if (resumable) {
      uppy.use(Tus, {
        onAfterResponse: (req, res) => {
          const id = res.getHeader("Aecflow-File-Id");
          if (id) tusFileIds.set(uploadPath(req.getURL()), id);
        },
        endpoint: "/v1/tus/",
        headers: authHeaders(),
        chunkSize: 16 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000],
        removeFingerprintOnSuccess: true,
        allowedMetaFields: ["filename", "project", "filetype"],
      });
      ui.protocol.textContent = "Uploads are resumable (tus): an interrupted upload continues where it stopped.";
    } else {
      uppy.use(XHRUpload, {
        endpoint: `/v1/projects/${encodeURIComponent(project)}/files`,
        headers: authHeaders(),
        fieldName: "file",
        formData: true,
        allowedMetaFields: [],
        limit: 4,
      });
      ui.protocol.textContent = "Each file is streamed in one request.";
    }
    const rows = new Map();
    const mine = uppy;

    function row(file) {
      const bar = el("progress", { max: "100", value: "0", "aria-label": `Progress of ${file.name}` });
      const state = el("span", { class: "state", text: "waiting" });
      const cancel = el("button", { type: "button", class: "danger", text: "Cancel", "aria-label": `Cancel ${file.name}` });
      cancel.addEventListener("click", () => {
        mine.removeFile(file.id);
        state.textContent = "cancelled";
        cancel.disabled = true;
        announce(`${file.name}: upload cancelled`);
      });
      const item = el("li", { "data-name": file.name }, el("span", { class: "name", text: file.name }), bar, state, cancel);
      ui.uploads.append(item);
      rows.set(file.id, { item, bar, state, cancel });
    }

    uppy.on("file-added", (file) => row(file));
    uppy.on("upload-progress", (file, progress) => {
      const r = rows.get(file.id);
      if (!r || !progress.bytesTotal) return;
      const percent = Math.floor((100 * progress.bytesUploaded) / progress.bytesTotal);
      r.bar.value = percent;
      r.state.textContent = `${percent}% of ${bytes(progress.bytesTotal)}`;
    });
    uppy.on("upload-success", (file, response) => {
      const r = rows.get(file.id);
      if (!r) return;
      r.bar.value = 100;
      r.cancel.disabled = true;
      const record = response && response.body;
      const fileId = record && record.id
        ? record.id
        : response && response.uploadURL && tusFileIds.get(uploadPath(response.uploadURL));
      r.state.replaceChildren(fileId
        ? el("a", { href: `#/f/${fileId}`, text: "uploaded" })
        : "uploaded");
      announce(`${file.name} uploaded`);
      ui.reload();
    });
    uppy.on("upload-error", (file, error, response) => {
      const r = rows.get(file.id);
      let message = error && error.message ? error.message : "failed";
      const body = response && response.body;
      if (body && body.error) message = `${body.error.message} (${body.error.code})`;
      if (r) { r.state.textContent = `failed: ${message}`; r.cancel.disabled = true; }
      announce(`${file.name}: upload failed`);
    });

    function add(files) {
      for (const data of files) {
        try {
          mine.addFile({
            name: data.name, type: data.type, data, source: "page",
            meta: { filename: data.name, project, filetype: data.type || "application/octet-stream" },
          });
        } catch (error) {
          announce(`${data.name}: ${error.message}`);
        }
      }
    }
    ui.picker.addEventListener("change", () => { add(Array.from(ui.picker.files)); ui.picker.value = ""; });
    ui.drop.addEventListener("dragover", (event) => { event.preventDefault(); ui.drop.classList.add("over"); });
    ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
    ui.drop.addEventListener("drop", (event) => {
      event.preventDefault();
      ui.drop.classList.remove("over");
      add(Array.from(event.dataTransfer.files));
    });
  }

  // ---- a file --------------------------------------------------------------------------

  async function renderFile(fileId, current) {
    let record;
    try {
      record = await api(`/v1/files/${encodeURIComponent(fileId)}`);
    } catch (error) {
      main.replaceChildren(el("h1", { text: "File" }), el("p", { text: `${error.message} (${error.code})` }));
      return;
    }
    if (current !== view) return;
    drawFile(record, current, true);
  }

  function drawFile(record, current, first) {
    const processing = record.processing || {};
    const status = el("p", { id: "file-status", "aria-live": "polite" }, "Status: ", statusBadge(record),
      processing.outcome ? ` · ${processing.outcome}` : "",
      ACTIVE.includes(record.status) && !record.deleted_at ? el("span", { class: "muted", text: " · updating…" }) : "");
    const dl = el("dl", { class: "facts" });
    for (const [label, value] of [
      ["Project", el("a", { href: `#/p/${encodeURIComponent(record.project)}`, text: record.project })],
      ["Size", bytes(record.size)],
      ["SHA-256", el("code", { text: record.sha256 || "" })],
      ["Content type", record.content_type || ""],
      ["Uploaded", when(record.created_at)],
      ["Deleted", record.deleted_at ? when(record.deleted_at) : null],
      ["Processor", processing.processor || null],
      ["Took", typeof processing.duration_s === "number" ? `${processing.duration_s.toFixed(1)} s` : null],
      ["Error", processing.error || null],
      ...Object.entries(record.metadata || {}).map(([k, v]) => [`meta.${k}`, v]),
    ]) {
      if (value === null || value === undefined) continue;
      dl.append(el("dt", { text: label }), el("dd", {}, value));
    }

    const actions = el("div", { class: "actions" });
    const canWrite = me.role !== "reader";
    if (!record.deleted_at) {
      actions.append(el("button", { type: "button", id: "download", onclick: () => download(record) }, "Download"));
    }
    if (canWrite && !record.deleted_at) {
      actions.append(el("button", {
        type: "button", class: "danger", id: "delete",
        onclick: () => change(record, "DELETE", `/v1/files/${record.id}`, "deleted", current),
      }, "Delete"));
    }
    if (canWrite && record.deleted_at) {
      actions.append(el("button", {
        type: "button", class: "primary", id: "restore",
        onclick: () => change(record, "POST", `/v1/files/${record.id}/restore`, "restored", current),
      }, "Restore"));
    }

    const title = el("h1", { tabindex: "-1", id: "file-title", text: record.filename });
    main.replaceChildren(title, status, actions, el("section", { class: "card" }, dl), summary(processing));
    if (first) title.focus();
    if (ACTIVE.includes(record.status) && !record.deleted_at) {
      setTimeout(async () => {
        if (current !== view) return;
        try {
          const fresh = await api(`/v1/files/${encodeURIComponent(record.id)}`);
          if (current !== view) return;
          if (fresh.status !== record.status) announce(`${fresh.filename}: ${fresh.status}`);
          drawFile(fresh, current, false);
        } catch (error) {
          if (current === view) showAlert(`Checking the file failed: ${error.message}`);
        }
      }, POLL_MS);
    }
  }

  async function change(record, method, path, done, current) {
    try {
      const fresh = await api(path, { method });
      announce(`${record.filename} ${done}`);
      if (current === view) {
        drawFile(fresh, current, false);
        const next = $("#restore") || $("#delete");
        if (next) next.focus();
      }
    } catch (error) {
      showAlert(`${error.message} (${error.code})`);
    }
  }

  async function download(record) {
    announce(`Downloading ${record.filename}`);
    try {
      const response = await fetch(`/v1/files/${record.id}/download`, { headers: authHeaders() });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: record.filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      showAlert(`Download failed: ${error.message}`);
    }
  }

  // ---- the IFC summary -----------------------------------------------------------------

  function summary(processing) {
    const result = processing.result;
    if (!result || typeof result !== "object") {
      return el("p", { class: "muted", id: "no-summary", text: processing.outcome === "skipped" ? "No processor reads this kind of file." : "No summary yet." });
    }
    const parts = [el("h2", { text: "Summary" })];
    const headline = el("dl", { class: "facts" });
    for (const [label, value] of [
      ["Schema", result.schema], ["Project", result.project_name],
      ["Entities", result.entity_count], ["Products", result.product_count],
      ["Elements with a material", result.elements_with_material],
    ]) {
      if (value !== null && value !== undefined) headline.append(el("dt", { text: label }), el("dd", { text: number(value) }));
    }
    parts.push(el("section", { class: "card", id: "headline" }, headline));
    const grid = el("div", { class: "grid2" });
    if (result.element_counts && Object.keys(result.element_counts).length) grid.append(chart(result.element_counts));
    if (Array.isArray(result.storeys)) grid.append(storeys(result.storeys));
    parts.push(grid);
    if (Array.isArray(result.materials) && result.materials.length) parts.push(materials(result.materials));
    if (result.quantities && Object.keys(result.quantities).length) parts.push(quantities(result.quantities));
    const warnings = [...(result.warnings || []), ...((result.parse && result.parse.warnings_text) || [])];
    parts.push(el("section", { class: "card", id: "warnings", "aria-labelledby": "warnings-title" },
      el("h2", { id: "warnings-title", text: `Warnings (${warnings.length})` }),
      warnings.length
        ? el("ul", { class: "warnings" }, warnings.map((w) => el("li", { text: String(w) })))
        : el("p", { class: "muted", text: "None." }),
      result.parse ? el("p", { class: "muted", text: `Parse: ${number(result.parse.warnings)} warning(s), ${number(result.parse.errors)} error(s)${result.parse.partial ? ", partial" : ""}.` }) : null));
    parts.push(el("details", {}, el("summary", { text: "Everything the processor returned (JSON)" }),
      el("pre", { text: JSON.stringify(result, null, 2) })));
    return el("div", { id: "summary" }, parts);
  }

  function chart(counts) {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const top = entries.slice(0, 20);
    const max = Math.max(...top.map(([, n]) => n), 1);
    const rowHeight = 22, labelWidth = 190, barWidth = 260, width = labelWidth + barWidth + 60;
    const picture = svg("svg", {
      viewBox: `0 0 ${width} ${top.length * rowHeight + 4}`, role: "img",
      "aria-labelledby": "chart-title", id: "element-chart",
    });
    top.forEach(([name, n], i) => {
      const y = i * rowHeight + 2;
      const w = Math.max(1, Math.round((barWidth * n) / max));
      const group = svg("g", { class: "row" }, svg("title", {}, `${name}: ${n}`));
      group.append(
        svg("text", { x: labelWidth - 6, y: y + 15, "text-anchor": "end" }, name),
        svg("rect", { class: "bar", x: labelWidth, y: y + 3, width: w, height: rowHeight - 6, rx: 2 }),
        svg("text", { x: labelWidth + w + 6, y: y + 15 }, n.toLocaleString()));
      picture.append(group);
    });
    const rest = entries.length - top.length;
    return el("section", { class: "card chart", "aria-labelledby": "chart-title" },
      el("h2", { id: "chart-title", text: "Elements by class" }), picture,
      rest > 0 ? el("p", { class: "muted", text: `and ${rest} more class(es), in the JSON below` }) : null);
  }

  function storeys(list) {
    return el("section", { class: "card", id: "storeys", "aria-labelledby": "storeys-title" },
      el("h2", { id: "storeys-title", text: `Storeys (${list.length})` }),
      list.length
        ? el("ol", {}, list.map((s) => el("li", {
          text: typeof s === "string" ? s : [s.name, s.elevation !== undefined && s.elevation !== null ? `elevation ${number(s.elevation)}` : ""].filter(Boolean).join(" · "),
        })))
        : el("p", { class: "muted", text: "No storeys." }));
  }

  function materials(list) {
    const columns = ["name", "kind", ...list.flatMap((m) => Object.keys(m))]
      .filter((key, i, all) => all.indexOf(key) === i)
      .filter((key) => list.some((m) => m[key] !== null && m[key] !== undefined && typeof m[key] !== "object"));
    return el("section", { class: "card", id: "materials", "aria-labelledby": "materials-title" },
      el("h2", { id: "materials-title", text: `Materials (${list.length})` }),
      el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Materials table" }, el("table", {},
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c.replaceAll("_", " ") })))),
        el("tbody", {}, list.map((m) => el("tr", {}, columns.map((c) =>
          el("td", { class: typeof m[c] === "number" ? "num" : null, text: typeof m[c] === "object" ? "" : number(m[c]) }))))))));
  }

  function quantities(byClass) {
    const rows = [];
    for (const [cls, byName] of Object.entries(byClass)) {
      for (const [name, q] of Object.entries(byName || {})) {
        const value = q && typeof q === "object" ? q : { value: q };
        rows.push(el("tr", {}, el("td", { text: cls }), el("td", { text: name }),
          el("td", { class: "num", text: number(value.value) }), el("td", { text: value.unit || "" }),
          el("td", { class: "num", text: value.count === undefined ? "" : number(value.count) })));
      }
    }
    return el("section", { class: "card", id: "quantities", "aria-labelledby": "quantities-title" },
      el("h2", { id: "quantities-title", text: `Quantities (${rows.length} totals per class)` }),
      el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Quantities table" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Class", "Quantity", "Total", "Unit", "Elements"].map((c) =>
          el("th", { scope: "col", class: c === "Total" || c === "Elements" ? "num" : null, text: c })))),
        el("tbody", {}, rows))));
  }

  // ---- dead letters --------------------------------------------------------------------

  async function renderDead(current) {
    const title = el("h1", { tabindex: "-1", text: "Dead letters" });
    const body = el("tbody", { id: "dead-rows" });
    main.replaceChildren(title,
      el("p", { class: "muted", text: "Events that could not be delivered. Redeliver queues one again with fresh attempts." }),
      el("table", { id: "dead" },
        el("thead", {}, el("tr", {}, ["Event", "Destination", "Project", "Attempts", "Last error", "When", ""].map((c) =>
          el("th", { scope: "col", text: c })))),
        body));
    let page;
    try {
      page = await api("/v1/events/dead?limit=100");
    } catch (error) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "7", text: `${error.message} (${error.code})` })));
      return;
    }
    if (current !== view) return;
    if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: "7", text: "No dead letters." })));
    for (const dead of page.items) {
      const button = el("button", { type: "button", "aria-label": `Redeliver ${dead.event_type} to ${dead.destination}`, text: "Redeliver" });
      const cell = el("td", {}, button);
      button.addEventListener("click", async () => {
        try {
          await api(`/v1/events/dead/${encodeURIComponent(dead.id)}/redeliver`, { method: "POST" });
          cell.replaceChildren(el("span", { class: "badge processed", text: "queued again" }));
          announce(`${dead.event_type} queued again`);
        } catch (error) {
          showAlert(`Redelivery failed: ${error.message} (${error.code})`);
        }
      });
      body.append(el("tr", {},
        el("td", { text: dead.event_type }), el("td", { text: dead.destination }),
        el("td", {}, dead.file_id ? el("a", { href: `#/f/${dead.file_id}`, text: dead.project }) : dead.project),
        el("td", { class: "num", text: dead.attempts }), el("td", { text: dead.last_error || "" }),
        el("td", { text: when(dead.created_at) }), cell));
    }
    title.focus();
  }

  // ---- routing -------------------------------------------------------------------------

  async function render() {
    const current = ++view;
    if (!token()) { me = null; showHeader(); renderSignIn(); return; }
    if (!me) {
      try {
        me = await api("/v1/me");
      } catch (error) {
        if (error.status !== 401) showAlert(`The host could not be reached: ${error.message}`);
        return;
      }
      showHeader();
      if (current !== view) return;
    }
    const hash = location.hash || "#/";
    const [, kind, arg] = hash.match(/^#\/(p|f|dead)?\/?(.*)$/) || [];
    const name = arg ? decodeURIComponent(arg) : "";
    if (kind === "p" && name) await renderProject(name, current);
    else if (kind === "f" && name) await renderFile(name, current);
    else if (kind === "dead") await renderDead(current);
    else renderProjects();
  }

  $("#sign-out").addEventListener("click", () => { showAlert(""); signOut(null); announce("Signed out"); });
  window.addEventListener("hashchange", () => { showAlert(""); render(); });
  render();
})();
