// Shared helpers of the aigc pages: API calls, safe DOM building (text only, never HTML), SSE reading, SVG.
"use strict";

const aigc = (() => {
  async function errorText(response) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error && body.error.message) return body.error.message;
      if (body && typeof body.detail === "string") return body.detail;
    } catch (_) { /* not JSON: show the text */ }
    return text || `${response.status} ${response.statusText}`;
  }

  async function request(path, options = {}) {
    const init = { credentials: "same-origin", ...options, headers: { ...(options.headers || {}) } };
    if (options.json !== undefined) {
      init.method = init.method || "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
      delete init.json;
    }
    const response = await fetch(path, init);
    if (!response.ok) throw new Error(await errorText(response));
    return response;
  }

  async function api(path, options = {}) {
    return (await request(path, options)).json();
  }

  // Yields {event, data} for each server-sent event of a fetch response (data parsed as JSON when it can be).
  async function* sse(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        const raw = data.join("\n");
        let parsed = raw;
        try { parsed = JSON.parse(raw); } catch (_) { /* [DONE] and other plain text */ }
        yield { event, data: parsed };
      }
    }
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "value") node.value = String(v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function num(x, digits = 2) {
    return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
  }

  function pct(x, digits = 0) {
    return x === null || x === undefined || Number.isNaN(x) ? "–" : `${(100 * x).toFixed(digits)}%`;
  }

  function when(seconds) {
    return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–";
  }

  function showError(target, error) {
    clear(target);
    target.hidden = false;
    target.append(el("strong", { text: "Error: " }), String(error && error.message ? error.message : error));
  }

  // A horizontal bar split into parts [{value, cls, label}], as inline SVG (no external assets).
  function stackedBar(parts, { width = 240, height = 14, title = "" } = {}) {
    const total = parts.reduce((s, p) => s + p.value, 0) || 1;
    const bar = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
    bar.append(svg("title", {}, title));
    let x = 0;
    for (const part of parts) {
      const w = (part.value / total) * width;
      if (w > 0) bar.append(svg("rect", { x, y: 0, width: w, height, class: part.cls }, svg("title", {}, part.label)));
      x += w;
    }
    return bar;
  }

  function ready() {
    document.body.dataset.ready = "1";
  }

  return { api, request, sse, el, svg, clear, num, pct, when, showError, stackedBar, ready };
})();
