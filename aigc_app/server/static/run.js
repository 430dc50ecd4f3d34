// One run: its summary, per-evaluator and per-variant figures (inline SVG bars), downloads, and the HTML report.
"use strict";

(async () => {
  const { api, el, num, pct, when, stackedBar, showError } = aigc;
  const ref = decodeURIComponent(location.pathname.replace(/^\/runs\//, ""));
  try {
    const run = await api(`/v1/runs/${encodeURIComponent(ref)}`);
    document.title = `${run.run_id} · aigc`;
    document.getElementById("title").textContent = `Run ${run.run_id}`;
    const dl = (label, value) => [el("dt", { text: label }), el("dd", { text: value })];
    document.getElementById("summary").append(...[el("dl", {},
      dl("Suite", `${run.suite}${run.suite_path ? ` (${run.suite_path})` : ""}`),
      dl("Status", run.status + (run.live ? " (being written)" : "")),
      dl("Started", when(run.started_at)), dl("Finished", when(run.finished_at)),
      dl("Cases", `${run.done} of ${run.planned} recorded, ${run.failed} failed to generate`),
      dl("Passed", `${run.passed} (${pct(run.pass_rate, 1)})`),
      dl("Prompts", run.prompts.join(", ")), dl("Models", run.models.join(", ")),
      dl("Cost", `$${num(run.cost_usd, 4)}`)),
      run.notes.length ? el("ul", {}, run.notes.map((n) => el("li", { class: "note", text: n }))) : null,
      run.status === "interrupted" ? el("p", { class: "note", text: `Resume: ${run.resume_command}` }) : null].filter(Boolean));

    const evBody = document.querySelector("#evaluators tbody");
    for (const e of run.by_evaluator) {
      const judged = e.passed + e.failed;
      const bar = stackedBar([
        { value: e.passed, cls: "pass", label: `${e.passed} passed` },
        { value: e.failed, cls: "fail", label: `${e.failed} failed` },
        { value: e.not_applicable, cls: "na", label: `${e.not_applicable} not applicable` },
        { value: e.errors, cls: "err", label: `${e.errors} errors` },
      ], { title: `${e.evaluator}: ${e.passed} passed, ${e.failed} failed, ${e.not_applicable} n/a, ${e.errors} errors` });
      evBody.append(el("tr", { "data-evaluator": e.evaluator },
        el("td", {}, e.evaluator, e.advisory ? el("span", { class: "badge adv", text: "advisory" }) : null),
        el("td", {}, bar, ` ${e.passed} / ${e.failed} / ${e.not_applicable} / ${e.errors}`),
        el("td", { class: "num", text: judged ? pct(e.passed / judged, 1) : "–" }), el("td", { class: "num", text: num(e.mean) })));
    }
    const vBody = document.querySelector("#variants tbody");
    for (const v of run.variants) {
      vBody.append(el("tr", {}, el("td", { text: v.variant }), el("td", { class: "num", text: String(v.cases) }),
        el("td", { class: "num", text: String(v.passed) }), el("td", { class: "num", text: String(v.errors) }),
        el("td", {}, stackedBar([{ value: v.passed, cls: "pass", label: "passed" }, { value: v.cases - v.passed, cls: "fail", label: "not passed" }],
          { width: 160, title: `${pct(v.pass_rate, 1)} passed` }), " ", pct(v.pass_rate, 1)),
        el("td", { class: "num", text: v.mean_latency_s === null ? "–" : `${num(v.mean_latency_s)} s` })));
    }
    const base = `/v1/runs/${encodeURIComponent(run.run_id)}/report`;
    const downloads = document.getElementById("downloads");
    downloads.append("Download: ", ...["html", "md", "json", "junit"].map((f) => el("a", { href: `${base}?format=${f}`, text: f, download: "" })),
      el("a", { href: `/compare?b=${encodeURIComponent(run.run_id)}`, text: "compare with another run…" }));
    const frame = document.getElementById("report");
    frame.addEventListener("load", () => aigc.ready(), { once: true });
    frame.src = `${base}?format=html&download=false`;
  } catch (error) {
    showError(document.getElementById("error"), error);
    aigc.ready();
  }
})();
