// Shared by the console's pages: the API key (kept in this tab's sessionStorage, so it is
// entered once per tab and gone when the tab closes), API calls that turn every failure
// into a readable message, and small DOM helpers. No framework, no build step.
"use strict";

const snaprag = (() => {
  const KEY_ITEM = "snaprag.apiKey";

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function key() {
    return sessionStorage.getItem(KEY_ITEM) || "";
  }

  function headers(extra) {
    const out = Object.assign({}, extra || {});
    const k = key();
    if (k) out.Authorization = "Bearer " + k;
    return out;
  }

  // what to do next, for the statuses a console user can fix themselves
  function hint(status) {
    if (status === 401) return key() ? " Check the API key above." : " Enter an API key above.";
    if (status === 403) return " Use a key with that scope.";
    return "";
  }

  // every API error is JSON {"error": {"code", "message"}}; anything else (a proxy's HTML
  // page, a dropped connection) still becomes one line of text
  async function errorOf(res) {
    let code = "http_" + res.status;
    let message = res.status + " " + res.statusText;
    try {
      const body = await res.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch (_) {
      /* not JSON: keep the status line */
    }
    const next = hint(res.status);
    const said = next && !/[.!?]$/.test(message) ? message + "." : message;
    return new ApiError(res.status, code, said + next);
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, "unreachable", "Cannot reach the server: " + e.message);
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  async function json(path, options) {
    return (await api(path, options)).json();
  }

  // options: extra headers and an AbortSignal (a new question cancels the previous one)
  function post(path, body, options) {
    const opts = options || {};
    const h = Object.assign({ "Content-Type": "application/json" }, opts.headers || {});
    return api(path, { method: "POST", headers: h, body: JSON.stringify(body), signal: opts.signal });
  }

  // el("td", {class: "num"}, "12") -> <td class="num">12</td>; children are text or nodes,
  // never HTML strings, so nothing the API returns is ever parsed as markup
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "style") node.style.cssText = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fill(target, ...children) {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
    return node;
  }

  function showError(err) {
    const box = document.getElementById("error");
    box.textContent = err instanceof Error ? err.message : String(err);
    box.hidden = false;
  }

  function clearError() {
    document.getElementById("error").hidden = true;
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    if (value >= 1000) return (value / 1000).toFixed(2) + " s";
    if (value >= 100) return value.toFixed(0) + " ms";
    if (value >= 1) return value.toFixed(1) + " ms";
    return value.toFixed(3) + " ms";
  }

  function basename(path) {
    return String(path || "").split(/[\\/]/).pop();
  }

  // the key form in the header: "Use" stores the key for this tab, "Forget" drops it;
  // either way the page reloads its data with the new key
  function keyForm(onChange) {
    const form = document.getElementById("key-form");
    const input = document.getElementById("key");
    const said = document.getElementById("key-state");
    const show = () => {
      said.textContent = key() ? "key set for this tab" : "no key";
      input.value = "";
      input.placeholder = key() ? "•••••••• (replace)" : "only if the server has keys";
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const value = input.value.trim();
      if (value) sessionStorage.setItem(KEY_ITEM, value);
      show();
      onChange();
    });
    document.getElementById("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_ITEM);
      show();
      onChange();
    });
    show();
  }

  // a script error must never leave a blank or silently frozen page
  window.addEventListener("error", (e) => showError("Console error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => {
    const why = e.reason instanceof Error ? e.reason.message : String(e.reason);
    showError("Console error: " + why);
  });

  return { ApiError, api, json, post, el, fill, showError, clearError, ms, basename, keyForm };
})();
