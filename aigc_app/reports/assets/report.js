"use strict";
// The case table of an aigc HTML report: filter, sort and page over column arrays; rows are built with
// textContent only (outputs are untrusted text); one page of rows is in the DOM at a time.
(function () {
  const D = JSON.parse(document.getElementById("aigc-data").textContent);
  const C = D.cases, S = D.strings, EV = D.evaluators, N = C.id.length, PAGE = 100;
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null)
    e.textContent = String(text); if (cls) e.className = cls; return e; };
  // Per evaluator: the first scoring's value and state (0 none, 1 pass, 2 fail, 3 error, 4 skipped).
  const value = EV.map(() => new Float64Array(N).fill(NaN));
  const state = EV.map(() => new Uint8Array(N));
  const evalErr = new Uint8Array(N), anySkip = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    for (const s of C.sc[i]) {
      const [e, v, passed, , , err, flags, rescore] = s;
      if (rescore) continue;
      const applicable = flags & 1, advisory = flags & 2;
      value[e][i] = v === null ? NaN : v;
      let st = err !== null ? 3 : (!applicable || advisory || passed === null) ? 4 : passed ? 1 : 2;
      if (err !== null) { value[e][i] = NaN; evalErr[i] = 1; }
      if (st === 4) anySkip[i] = 1;
      state[e][i] = st;
    }
  }
  const haystack = new Array(N);
  for (let i = 0; i < N; i++) {
    haystack[i] = (C.id[i] + "\u0000" + D.variants[C.v[i]] + "\u0000" + C.out[i] + "\u0000" + (C.e[i] || "")).toLowerCase();
  }
  let rows = new Int32Array(N).map((_, i) => i), page = 0, sortKey = null, sortDir = 1, selected = -1;

  function matches(i, q, variant, evaluator, want) {
    if (variant >= 0 && C.v[i] !== variant) return false;
    if (evaluator >= 0) {
      const st = state[evaluator][i];
      if (st === 0) return false;
      if (want === "pass" && st !== 1) return false;
      if (want === "fail" && st !== 2) return false;
      if (want === "error" && st !== 3) return false;
      if (want === "skipped" && st !== 4) return false;
    } else if (want !== "all") {
      const genErr = C.e[i] !== null;
      if (want === "pass" && !C.p[i]) return false;
      if (want === "fail" && (C.p[i] || genErr)) return false;
      if (want === "error" && !(genErr || evalErr[i])) return false;
      if (want === "skipped" && !anySkip[i]) return false;
    }
    return q === "" || haystack[i].indexOf(q) !== -1;
  }

  function keyOf(k) {
    if (k === "id") return (i) => C.id[i];
    if (k === "r") return (i) => C.r[i];
    if (k === "v") return (i) => D.variants[C.v[i]];
    if (k === "p") return (i) => (C.e[i] !== null ? -1 : C.p[i]);
    if (k === "lat") return (i) => C.lat[i];
    if (k === "out") return (i) => C.out[i];
    const e = Number(k.slice(2));
    return (i) => value[e][i];
  }

  function sortRows() {
    if (sortKey === null) return;
    const key = keyOf(sortKey), keys = new Array(N);
    for (const i of rows) keys[i] = key(i);
    const dir = sortDir;
    const arr = Array.from(rows);
    arr.sort((a, b) => {
      let x = keys[a], y = keys[b];
      if (typeof x === "number" && isNaN(x)) return 1; if (typeof y === "number" && isNaN(y)) return -1;
      return (x < y ? -1 : x > y ? 1 : a - b) * dir;
    });
    rows = Int32Array.from(arr);
  }

  function apply() {
    const t0 = performance.now();
    const q = $("q").value.trim().toLowerCase(), variant = Number($("f-variant").value);
    const evaluator = Number($("f-evaluator").value), want = $("f-state").value;
    const out = new Int32Array(N); let n = 0;
    for (let i = 0; i < N; i++) if (matches(i, q, variant, evaluator, want)) out[n++] = i;
    rows = out.slice(0, n); page = 0; sortRows(); render();
    const ms = performance.now() - t0;
    document.body.dataset.filterMs = ms.toFixed(2);
    return ms;
  }

  function fmt(v) { return isNaN(v) ? "" : v.toFixed(2); }
  const STATE_CLASS = ["", "pass", "fail", "error", "skip"];

  function render() {
    const body = $("cases-body"), frag = document.createDocumentFragment();
    const start = page * PAGE, end = Math.min(rows.length, start + PAGE);
    for (let k = start; k < end; k++) {
      const i = rows[k], tr = el("tr");
      tr.dataset.row = i; if (i === selected) tr.className = "selected";
      tr.appendChild(el("td", C.id[i], "mono"));
      tr.appendChild(el("td", C.r[i], "num"));
      tr.appendChild(el("td", D.variants[C.v[i]]));
      const genErr = C.e[i] !== null;
      tr.appendChild(el("td", genErr ? "error" : C.p[i] ? "pass" : "fail", genErr ? "error" : C.p[i] ? "pass" : "fail"));
      tr.appendChild(el("td", C.lat[i].toFixed(2), "num"));
      for (let e = 0; e < EV.length; e++) {
        const st = state[e][i];
        tr.appendChild(el("td", st === 3 ? "err" : st === 0 ? "" : fmt(value[e][i]) + (st === 4 ? "*" : ""),
          "num " + STATE_CLASS[st]));
      }
      tr.appendChild(el("td", genErr ? C.e[i] : C.out[i].slice(0, 160), "out"));
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    $("count").textContent = rows.length ? `rows ${start + 1}-${end} of ${rows.length} (${N} in the run)` : `no rows match (${N} in the run)`;
    $("page").textContent = `page ${page + 1} of ${pages}`;
    $("prev").disabled = page === 0; $("next").disabled = page >= pages - 1;
  }

  function section(parent, title, node) { parent.appendChild(el("h3", title)); parent.appendChild(node); }

  function showDetail(i) {
    selected = i;
    const d = $("detail"); d.replaceChildren(); d.hidden = false;
    d.appendChild(el("h2", `${C.id[i]} #${C.r[i]} \u2014 ${D.variants[C.v[i]]}`));
    const genErr = C.e[i] !== null;
    d.appendChild(el("p", genErr ? "generation error" : C.p[i] ? "passed" : "failed", genErr ? "error" : C.p[i] ? "pass" : "fail"));
    if (genErr) section(d, "error", el("pre", C.e[i], "error"));
    section(d, "output", el("pre", C.out[i]));
    const t = el("table"), head = el("tr");
    for (const h of ["evaluator", "version", "value", "verdict", "threshold", "rescore", "reason", "error"]) head.appendChild(el("th", h));
    t.appendChild(head);
    for (const [e, v, passed, threshold, reason, err, flags, rescore, version, details] of C.sc[i]) {
      const tr = el("tr");
      const verdict = err !== null ? "error" : !(flags & 1) ? "not applicable" : (flags & 2) ? "advisory" + (passed === null ? "" : passed ? " (pass)" : " (fail)")
        : passed === null ? "no verdict" : passed ? "pass" : "fail";
      tr.appendChild(el("td", EV[e])); tr.appendChild(el("td", S[version]));
      tr.appendChild(el("td", v === null ? "" : v.toFixed(3), "num"));
      tr.appendChild(el("td", verdict, err !== null ? "error" : verdict === "pass" ? "pass" : verdict === "fail" ? "fail" : "skip"));
      tr.appendChild(el("td", threshold === null ? "" : Number(threshold.toPrecision(3)), "num")); tr.appendChild(el("td", rescore, "num"));
      const why = el("td", S[reason]); if (details !== null) why.appendChild(el("pre", S[details]));
      tr.appendChild(why); tr.appendChild(el("td", err, "error"));
      t.appendChild(tr);
    }
    section(d, "scores", t);
    const msgs = el("div");
    for (const [role, content] of C.msg[i]) { msgs.appendChild(el("div", S[role], "role")); msgs.appendChild(el("pre", S[content])); }
    section(d, "rendered prompt", msgs);
    section(d, "inputs", el("pre", JSON.stringify(JSON.parse(S[C.inp[i]]), null, 2)));
    const meta = JSON.parse(S[C.meta[i]]);
    const info = Object.assign({ latency_s: C.lat[i], tokens_in: C.ti[i], tokens_out: C.to[i], cost_usd: C.cost[i],
      cached: !!C.cached[i], key: C.k[i] }, meta);
    section(d, "generation", el("pre", JSON.stringify(info, null, 2)));
    render();
    d.scrollIntoView({ block: "start" });
  }

  function setup() {
    const fv = $("f-variant"), fe = $("f-evaluator");
    D.variants.forEach((v, i) => { const o = el("option", v); o.value = i; fv.appendChild(o); });
    EV.forEach((v, i) => { const o = el("option", v); o.value = i; fe.appendChild(o); });
    const head = $("cases-head"), cols = [["id", "case"], ["r", "#"], ["v", "variant"], ["p", "verdict"], ["lat", "latency s"]];
    EV.forEach((name, e) => cols.push(["e:" + e, name]));
    cols.push(["out", "output"]);
    const tr = el("tr");
    for (const [k, label] of cols) {
      const th = el("th", label); th.dataset.key = k;
      th.addEventListener("click", () => {
        sortDir = sortKey === k ? -sortDir : 1; sortKey = k;
        for (const x of tr.children) x.classList.remove("sorted-asc", "sorted-desc");
        th.classList.add(sortDir > 0 ? "sorted-asc" : "sorted-desc");
        page = 0; sortRows(); render();
      });
      tr.appendChild(th);
    }
    head.appendChild(tr);
    $("q").addEventListener("input", apply);
    for (const id of ["f-variant", "f-evaluator", "f-state"]) $(id).addEventListener("change", apply);
    $("prev").addEventListener("click", () => { if (page > 0) { page--; render(); } });
    $("next").addEventListener("click", () => { if ((page + 1) * PAGE < rows.length) { page++; render(); } });
    $("cases-body").addEventListener("click", (ev) => { const tr = ev.target.closest("tr"); if (tr) showDetail(Number(tr.dataset.row)); });
    render();
    window.aigcReport = { apply, showDetail, rowCount: () => rows.length };
    document.body.dataset.ready = "1";
  }
  setup();
})();
