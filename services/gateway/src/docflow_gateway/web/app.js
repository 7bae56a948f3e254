// docflow's web page: uploads to the gateway (this origin), follows the
// tenant's status stream on the status service (another origin, allowed by its
// CORS settings), searches through the gateway. No build step, no libraries.
"use strict";

const STATUS_URL = document.querySelector('meta[name="docflow-status-url"]').content.replace(/\/$/, "");
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
// A failure's code, in words (the message then says what happened and what to do).
const REASONS = {
  encrypted: "The file is protected by a password",
  corrupt: "The file is damaged",
  unsupported: "The content cannot be read",
  limit_exceeded: "The file is too large or too complex to process",
  timeout: "Reading the file took too long",
  internal: "Something went wrong on our side",
};

const $ = (selector) => document.querySelector(selector);
const rows = new Map(); // document id → [row], in upload order
const unclaimed = new Map(); // id → latest change, before its upload's answer came

const keyInput = $("#api-key");
keyInput.value = localStorage.getItem("docflow-api-key") || "";
keyInput.addEventListener("change", () => {
  localStorage.setItem("docflow-api-key", keyInput.value.trim());
  restartStream();
});

function headers() {
  const key = keyInput.value.trim();
  return key ? { "X-API-Key": key } : {};
}

// The detail of a problem answer (RFC 9457), or what there is.
async function refusal(response) {
  try {
    const body = await response.json();
    if (body.detail) return body.detail;
  } catch (_) { /* not JSON */ }
  return `HTTP ${response.status} ${response.statusText}`;
}

// ---- Documents ----------------------------------------------------------

function addRow(filename) {
  const element = $("#document").content.firstElementChild.cloneNode(true);
  element.querySelector(".name").textContent = filename;
  $("#documents").prepend(element);
  const row = { element, id: null, version: 0, status: "uploading" };
  element.querySelector(".retry").addEventListener("click", () => retry(row));
  show(row, { status: "uploading", progress: 0, message: "Uploading…" });
  return row;
}

function explain(status) {
  if (status.status === "refused") return `The gateway refused the file: ${status.message}`;
  if (status.status === "deleted") return "The document was deleted.";
  const error = status.error;
  if (status.status !== "failed" || !error) return status.message || "";
  const reason = REASONS[error.code] || error.code;
  const retry = error.retryable ? " Retrying may help." : "";
  const end = /[.!?]$/.test(error.message) ? "" : ".";
  return `${reason} (while ${error.stage}): ${error.message}${end}${retry}`;
}

// Where an unfinished document waits and when it should be done, from the
// status service's queue position and estimate; "" when it does not know.
function queueNote(status) {
  if (TERMINAL.has(status.status)) return "";
  const parts = [];
  if (status.queue_position != null && status.queue_stage) {
    const n = status.queue_position;
    parts.push(n ? `${n} document${n === 1 ? "" : "s"} ahead for ${status.queue_stage}` : `next for ${status.queue_stage}`);
  }
  if (status.estimated_completion_at) {
    const at = new Date(status.estimated_completion_at);
    parts.push(`done about ${at.toLocaleTimeString()}`);
  }
  return parts.join("; ");
}

function show(row, status) {
  row.status = status.status;
  const element = row.element;
  element.dataset.status = status.status;
  const stage = status.stage && !TERMINAL.has(status.status) ? ` · ${status.stage}` : "";
  const progress = status.progress ?? 0;
  element.querySelector(".state").textContent = `${status.status}${stage} · ${progress}%`;
  element.querySelector(".fill").style.width = `${progress}%`;
  element.querySelector(".message").textContent = explain(status);
  element.querySelector(".queue").textContent = queueNote(status);
  element.querySelector(".retry").hidden = !(status.status === "failed" || status.status === "cancelled");
}

// A status from the stream (with its version: only a higher one counts) or
// read once (no version: counts until the stream tells of the document).
function apply(status, version) {
  const known = rows.get(status.id);
  if (!known) {
    const early = unclaimed.get(status.id);
    if (version && (!early || early.version < version)) unclaimed.set(status.id, { status, version });
    return;
  }
  for (const row of known) {
    if (version ? version <= row.version : row.version) continue;
    row.version = version || 0;
    show(row, status);
  }
}

function claim(row, id) {
  row.id = id;
  rows.set(id, [...(rows.get(id) || []), row]);
  const early = unclaimed.get(id);
  if (early) {
    unclaimed.delete(id);
    apply(early.status, early.version);
  }
}

async function upload(file) {
  const row = addRow(file.name);
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try {
    // One file per request: a file the gateway refuses does not take the others with it.
    response = await fetch("/v1/documents", { method: "POST", body: form, headers: headers() });
  } catch (error) {
    show(row, { status: "refused", message: `the gateway did not answer (${error.message})` });
    return;
  }
  if (response.status !== 202) {
    show(row, { status: "refused", message: await refusal(response) });
    return;
  }
  const [accepted] = (await response.json()).documents;
  show(row, {
    status: "pending",
    progress: 0,
    message: accepted.status === "duplicate" ? "Uploaded before; this is that document" : "Uploaded; waiting to start",
  });
  claim(row, accepted.id);
  // A duplicate may have finished long ago, and never come on the stream.
  const current = await fetch(accepted.status_url, { headers: headers() }).catch(() => null);
  if (current && current.ok) apply(await current.json(), 0);
}

async function retry(row) {
  const response = await fetch(`/v1/documents/${row.id}/retry`, { method: "POST", headers: headers() });
  const message = response.status === 202 ? "Retry requested" : await refusal(response);
  row.element.querySelector(".message").textContent = message;
}

function uploadAll(files) {
  // One after another, in the order given.
  return [...files].reduce((previous, file) => previous.then(() => upload(file)), Promise.resolve());
}

const drop = $("#drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  uploadAll(event.dataTransfer.files);
});
$("#files").addEventListener("change", (event) => {
  uploadAll(event.target.files);
  event.target.value = "";
});

// ---- The tenant's status stream (Server-Sent Events over fetch, so that the
// API key can go in a header; EventSource cannot send one) --------------------

let lastEventId = null;
let stream = null;

async function follow() {
  const controller = new AbortController();
  stream = controller;
  const state = $("#stream-state");
  while (stream === controller) {
    try {
      const response = await fetch(`${STATUS_URL}/v1/documents/stream`, {
        headers: { ...headers(), ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(await refusal(response));
      state.textContent = "";
      await readEvents(response.body, (event) => {
        if (event.id) lastEventId = event.id;
        const body = JSON.parse(event.data);
        if (event.type === "status") apply(body, body.version);
        if (event.type === "deleted") for (const row of rows.get(body.id) || []) show(row, { status: "deleted" });
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      state.textContent = `Live progress paused: cannot read ${STATUS_URL} (${error.message}); trying again…`;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function restartStream() {
  if (stream) stream.abort();
  follow();
}

async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { type: "", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length) onEvent({ type: event.type || "message", data: event.data.join("\n"), id: event.id });
        event = { type: "", data: [], id: event.id };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") event.type = text;
      else if (name === "data") event.data.push(text);
      else if (name === "id") event.id = text;
    }
  }
}

// ---- Search ---------------------------------------------------------------

$("#search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const state = $("#search-state");
  const list = $("#results");
  state.textContent = "Searching…";
  const query = new URLSearchParams({ q: $("#query").value, limit: "5" });
  const response = await fetch(`/v1/search?${query}`, { headers: headers() }).catch(() => null);
  if (!response || !response.ok) {
    state.textContent = response ? await refusal(response) : "The gateway did not answer";
    return;
  }
  const found = await response.json();
  list.replaceChildren();
  state.textContent = found.results.length ? "" : "No matching chunks";
  for (const hit of found.results) {
    const item = $("#result").content.firstElementChild.cloneNode(true);
    item.querySelector(".name").textContent = hit.filename;
    const pages = hit.page === null ? "" : hit.page === hit.page_end ? `page ${hit.page} · ` : `pages ${hit.page}–${hit.page_end} · `;
    item.querySelector(".meta").textContent = `${pages}score ${hit.score.toFixed(2)}`;
    item.querySelector(".text").textContent = hit.text;
    list.append(item);
  }
});

follow();
