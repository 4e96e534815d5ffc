// The search-and-ask page: POST /v1/ask with "stream": true and read the Server-Sent
// Events from the response body as they arrive (EventSource cannot POST), so the answer
// grows token by token; then its citations, the hits it was built from and the request's
// stage timings. window.askPage holds what arrived, for people debugging and for tests.
"use strict";

const { el, fill, ms, basename } = snaprag;
const $ = (id) => document.getElementById(id);

const page = (window.askPage = {
  collections: null,
  runs: 0,
  chunks: 0, // network reads of the current stream
  tokenChunks: 0, // reads that carried at least one token: > 1 means it really streamed
  tokens: 0,
  hits: [],
  done: null,
  error: null,
  streaming: false,
});

// where each stage comes in the pipeline (the API sends them in no fixed order)
const ORDER = [
  "normalize", "cache", "queue_wait", "batch_wait", "load", "embed", "bm25_tokenize", "bm25",
  "dense", "fuse", "fetch", "rerank", "retrieve", "context", "prefill", "decode", "answer",
];
const LABELS = {
  cache: "cache look-up",
  retrieve: "retrieve (the whole search)",
  prefill: "prefill (to the first token)",
  decode: "decode (generation)",
  answer: "answer (extractive)",
};

let controller = null;

function status(text) {
  $("status").textContent = text;
}

async function loadCollections() {
  const select = $("collection");
  const wanted = select.value || new URLSearchParams(location.search).get("collection");
  try {
    const names = (await snaprag.json("/v1/collections")).collections || [];
    fill(select, names.map((n) => el("option", { value: n }, n)));
    if (names.includes(wanted)) select.value = wanted;
    page.collections = names;
    if (names.length) snaprag.clearError();
    else snaprag.showError("This key has no collections yet: create one (POST /v1/collections).");
  } catch (e) {
    fill(select);
    page.collections = [];
    snaprag.showError(e);
  }
}

function reset() {
  Object.assign(page, { chunks: 0, tokenChunks: 0, tokens: 0, hits: [], done: null, error: null });
  fill("answer");
  fill("citations");
  fill("timings");
  fill("hits");
  $("metrics").textContent = "";
  $("hit-count").textContent = "";
  snaprag.clearError();
}

function request() {
  const question = $("question").value.trim();
  if (!question) {
    snaprag.showError("Type a question first.");
    return null;
  }
  if (controller) controller.abort(); // a new question replaces the one still streaming
  controller = new AbortController();
  reset();
  page.runs += 1;
  const k = Math.max(1, Math.min(100, Number($("k").value) || 5));
  return { question, k, collection: $("collection").value || "default" };
}

// "event: NAME\ndata: JSON" blocks, separated by a blank line
function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  return { name, data: JSON.parse(data.join("\n")) };
}

async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    page.chunks += 1;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let tokens = false;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (!event) continue;
      tokens = tokens || event.name === "token";
      onEvent(event);
    }
    if (tokens) page.tokenChunks += 1;
  }
}

function onEvent({ name, data }) {
  if (name === "hits") {
    page.hits = data.hits || [];
    renderHits(page.hits);
    status("writing…");
  } else if (name === "token") {
    page.tokens += 1;
    $("answer").append(data.text || "");
    status(`writing… ${page.tokens} tokens`);
  } else if (name === "done") {
    page.done = data;
    renderAnswer(data.answer || "", data.citations || []);
    renderTimings(data.timings || {}, data.metrics || {});
    status(`done${data.generator ? " · " + data.generator : ""}`);
  } else if (name === "error") {
    page.error = data;
    snaprag.showError(`The answer failed: ${data.message || data.code || "unknown error"}`);
    status("failed");
  }
}

async function ask(event) {
  event.preventDefault();
  const body = request();
  if (!body) return;
  const signal = controller.signal;
  page.streaming = true;
  $("answer").classList.add("streaming");
  status("retrieving…");
  try {
    const headers = { Accept: "text/event-stream" };
    const res = await snaprag.post("/v1/ask", { ...body, stream: true }, { headers, signal });
    await readEvents(res, onEvent);
    if (!page.done && !page.error) {
      snaprag.showError("The answer stream ended before the answer was complete.");
      status("incomplete");
    }
  } catch (e) {
    if (e.name === "AbortError") return; // replaced by a newer question
    page.error = { message: e.message };
    snaprag.showError(e);
    status("failed");
  } finally {
    if (!signal.aborted) {
      page.streaming = false;
      $("answer").classList.remove("streaming");
    }
  }
}

async function searchOnly() {
  const body = request();
  if (!body) return;
  status("searching…");
  try {
    const data = await (await snaprag.post("/v1/search", {
      query: body.question, k: body.k, collection: body.collection,
    }, { signal: controller.signal })).json();
    page.hits = data.hits || [];
    renderHits(page.hits);
    renderTimings(data.timings || {}, {});
    status("search only: no answer");
  } catch (e) {
    if (e.name === "AbortError") return;
    page.error = { message: e.message };
    snaprag.showError(e);
    status("failed");
  }
}

// the final answer, its [n] markers linked to the citation they name
function renderAnswer(text, citations) {
  const known = new Set(citations.map((c) => String(c.n)));
  const parts = text.split(/(\[\d+\])/);
  fill("answer", parts.map((part) => {
    const n = /^\[(\d+)\]$/.exec(part);
    if (!n || !known.has(n[1])) return part;
    return el("a", { class: "cite", href: `#cite-${n[1]}` }, part);
  }));
  fill("citations", citations.map((c) => el("li", { id: `cite-${c.n}` },
    el("b", {}, `[${c.n}] `),
    el("span", { class: "source", title: c.source }, basename(c.source)),
    c.page ? el("span", {}, ` · page ${c.page}`) : null,
  )));
  if (!citations.length) fill("citations", el("li", { class: "empty" }, "No citations."));
}

function renderHits(hits) {
  $("hit-count").textContent = `${hits.length}`;
  if (!hits.length) {
    fill("hits", el("p", { class: "empty" }, "Nothing found."));
    return;
  }
  fill("hits", hits.map((h, i) => el("div", { class: "hit" },
    el("div", {},
      el("span", { class: "muted" }, `${i + 1}. `),
      el("span", { class: "source", title: h.source }, basename(h.source)),
      h.page ? el("span", {}, ` · page ${h.page}`) : null,
      el("span", { class: "muted mono" }, ` · score ${Number(h.score).toFixed(3)}`),
    ),
    el("div", { class: "text" }, h.text),
  )));
}

function renderTimings(timings, metrics) {
  const names = Object.keys(timings).filter((k) => k !== "total");
  names.sort((a, b) => rank(a) - rank(b));
  const total = timings.total || Math.max(0, ...names.map((k) => timings[k]));
  const rows = names.map((name) => el("tr", {},
    el("td", {}, LABELS[name] || name.replace(/_/g, " ")),
    el("td", { class: "num" }, ms(timings[name])),
    el("td", { class: "bar-cell" },
      el("div", { class: "bar", style: `width: ${total ? (100 * timings[name]) / total : 0}%` })),
  ));
  if (timings.total !== undefined) {
    rows.push(el("tr", {}, el("th", {}, "total"), el("th", { class: "num" }, ms(timings.total)),
      el("td")));
  }
  fill("timings", rows);
  const said = [];
  if (metrics.ttft_ms !== undefined) said.push(`first token after ${ms(metrics.ttft_ms)}`);
  if (metrics.tokens_per_s !== undefined) said.push(`${metrics.tokens_per_s} tokens/s`);
  if (metrics.prompt_tokens !== undefined) said.push(`${metrics.prompt_tokens} prompt tokens`);
  if (metrics.completion_tokens !== undefined) {
    said.push(`${metrics.completion_tokens} answer tokens`);
  }
  $("metrics").textContent = said.join(" · ");
}

function rank(stage) {
  const i = ORDER.indexOf(stage);
  return i < 0 ? ORDER.length : i;
}

$("ask-form").addEventListener("submit", ask);
$("search").addEventListener("click", searchOnly);
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("ask-form").requestSubmit();
});
snaprag.keyForm(loadCollections);

// /?q=...&collection=...&k=... asks at once: a link to a question is a link to its answer
(async () => {
  const params = new URLSearchParams(location.search);
  if (params.get("k")) $("k").value = params.get("k");
  await loadCollections();
  if (params.get("q")) {
    $("question").value = params.get("q");
    if (page.collections && page.collections.length) $("ask-form").requestSubmit();
  }
})();
