// Compare two runs: per variant pair, each evaluator's paired effect with its 95% interval (an inline SVG forest
// plot), the verdict after Holm's correction, the cases that regressed, flaky cases, and notes.
"use strict";

(async () => {
  const { api, el, svg, num, pct, clear, showError } = aigc;
  const params = new URLSearchParams(location.search);
  const result = document.getElementById("result");
  try {
    const runs = await api("/v1/runs?limit=200");
    for (const side of ["a", "b"]) {
      const select = document.getElementById(side);
      for (const r of runs) select.append(el("option", { value: r.run_id, text: `${r.run_id} (${r.suite}, ${r.status})` }));
    }
    document.getElementById("a").value = params.get("a") || (runs[1] || runs[0] || {}).run_id || "";
    document.getElementById("b").value = params.get("b") || (runs[0] || {}).run_id || "";
    if (params.get("tolerance")) document.getElementById("tolerance").value = params.get("tolerance");
    if (params.get("a") && params.get("b")) {
      const q = new URLSearchParams({ a: params.get("a"), b: params.get("b"), tolerance: params.get("tolerance") || "0" });
      for (const key of ["variant_a", "variant_b"]) if (params.get(key)) q.set(key, params.get(key)); // two variants of one run
      show(await api(`/v1/runs/compare?${q}`));
    } else if (!runs.length) {
      result.append(el("p", { class: "note", text: "No runs in the store yet." }));
    } else {
      result.append(el("p", { class: "note", text: "Choose a baseline and a candidate, then Compare." }));
    }
  } catch (error) {
    showError(document.getElementById("error"), error);
  } finally {
    aigc.ready();
  }

  function show(c) {
    clear(result);
    result.append(el("p", { class: c.regressed ? "alert" : "ok", id: "verdict",
      text: c.regressed ? `Regressed: ${c.run_b} is significantly worse than ${c.run_a} on a gating evaluator.`
        : `No regression of ${c.run_b} against ${c.run_a} (alpha ${c.alpha}, tolerance ${c.tolerance}).` }));
    for (const v of c.variants) result.append(variant(v));
    if (c.notes.length) result.append(el("h2", { text: "Notes" }), el("ul", {}, c.notes.map((n) => el("li", { class: "note", text: n }))));
  }

  function variant(v) {
    const section = el("section", { class: "panel variant" });
    section.append(el("h2", { text: `${v.variant_a}  →  ${v.variant_b}` }),
      el("p", { class: "note", text: `${v.n_pairs} paired cases` + (v.only_a.length ? `; only in A: ${v.only_a.length}` : "") + (v.only_b.length ? `; only in B: ${v.only_b.length}` : "") }));
    section.append(forest(v.rows));
    const head = ["Evaluator", "Kind", "Pairs", "A", "B", "Effect (B − A)", "95% CI", "Test", "p", "p (Holm)", "Verdict"];
    const table = el("table", { class: "rows" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))));
    const tbody = el("tbody");
    for (const r of v.rows) {
      const a = r.kind === "pass/fail" ? pct(r.pass_rate_a, 1) : num(r.mean_a);
      const b = r.kind === "pass/fail" ? pct(r.pass_rate_b, 1) : num(r.mean_b);
      const cls = r.verdict === "regressed" ? "fail" : r.verdict === "improved" ? "pass" : "";
      tbody.append(el("tr", { "data-evaluator": r.evaluator, title: r.mde_sentence },
        el("td", {}, r.evaluator, r.advisory ? el("span", { class: "badge adv", text: "advisory" }) : null),
        el("td", { text: r.kind }), el("td", { class: "num", text: String(r.n_pairs) }),
        el("td", { class: "num", text: a }), el("td", { class: "num", text: b }),
        el("td", { class: "num", text: signed(r.effect) }), el("td", { class: "num", text: `${signed(r.effect_ci[0])} … ${signed(r.effect_ci[1])}` }),
        el("td", { text: r.test }), el("td", { class: "num", text: num(r.p, 3) }), el("td", { class: "num", text: num(r.p_holm, 3) }),
        el("td", {}, el("span", { class: `badge ${cls}`, text: r.verdict }))));
    }
    table.append(tbody);
    section.append(table);
    if (v.regressed_cases.length) {
      section.append(el("h3", { text: `Cases that passed in A and failed in B (${v.regressed_cases.length})` }));
      for (const rc of v.regressed_cases.slice(0, 20)) {
        section.append(el("details", {}, el("summary", { text: `${rc.case_id}: ${pct(rc.pass_rate_a)} → ${pct(rc.pass_rate_b)} ${rc.failures.join(", ")}` }),
          el("div", { class: "grid" }, el("pre", { text: rc.output_a }), el("pre", { text: rc.output_b }))));
      }
    }
    if (v.flaky.length) {
      section.append(el("details", { class: "flaky" }, el("summary", { text: `Flaky cases (${v.flaky.length}): repeats disagree, left out of the pass/fail tests` }),
        el("ul", {}, v.flaky.slice(0, 100).map((f) => el("li", { class: "note", text: `${f.case_id} · ${f.evaluator} · side ${f.side}: ${f.passes}/${f.repeats} passed` })))));
    }
    return section;
  }

  function signed(x) {
    return x === null || x === undefined ? "–" : (x > 0 ? "+" : "") + num(x, 3);
  }

  // One line per evaluator: the effect as a dot, its interval as a line, zero dashed. Scale: the widest interval.
  function forest(rows) {
    const width = 560, rowH = 22, left = 170, right = 20, top = 18;
    const height = top + rows.length * rowH + 8;
    const extent = Math.max(0.05, ...rows.flatMap((r) => [Math.abs(r.effect_ci[0] || 0), Math.abs(r.effect_ci[1] || 0), Math.abs(r.effect || 0)]));
    const x = (v) => left + ((v + extent) / (2 * extent)) * (width - left - right);
    const plot = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "forest", "aria-label": "Effect of B against A per evaluator, with 95% intervals" });
    plot.append(svg("line", { x1: x(0), x2: x(0), y1: 4, y2: height - 4, class: "zero" }),
      svg("text", { x: x(-extent), y: 12, "font-size": 10, fill: "#57606a" }, signed(-extent)),
      svg("text", { x: x(extent) - 30, y: 12, "font-size": 10, fill: "#57606a" }, signed(extent)));
    rows.forEach((r, i) => {
      const y = top + i * rowH + rowH / 2;
      const lo = r.effect_ci[0], hi = r.effect_ci[1];
      const cls = r.verdict === "regressed" ? "pt bad" : r.verdict === "improved" ? "pt good" : "pt";
      plot.append(svg("text", { x: 4, y: y + 4, "font-size": 12, fill: "#1b1f24" }, r.evaluator));
      if (lo !== null && hi !== null) plot.append(svg("line", { x1: x(lo), x2: x(hi), y1: y, y2: y, class: "ci" }));
      if (r.effect !== null) plot.append(svg("circle", { cx: x(r.effect), cy: y, r: 5, class: cls }, svg("title", {}, `${r.evaluator}: ${signed(r.effect)} (${r.verdict})`)));
    });
    return plot;
  }
})();
