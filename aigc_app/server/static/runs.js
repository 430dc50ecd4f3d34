// The runs list: one row per run, a pass-rate bar, and A/B pickers for the compare page.
"use strict";

(async () => {
  const { api, el, pct, when, stackedBar, showError } = aigc;
  const body = document.querySelector("#runs tbody");
  try {
    const runs = await api("/v1/runs?limit=200");
    document.getElementById("empty").hidden = runs.length > 0;
    document.getElementById("compare").disabled = runs.length < 1;
    runs.forEach((r, i) => {
      const link = el("a", { href: `/runs/${encodeURIComponent(r.run_id)}`, text: r.run_id });
      const pick = (side, checked) => el("input", {
        type: "radio", name: side, value: r.run_id, form: "compare-form", checked,
        "aria-label": `${side === "a" ? "baseline" : "candidate"} ${r.run_id}`,
      });
      const bar = stackedBar([
        { value: r.passed, cls: "pass", label: `${r.passed} passed` },
        { value: r.done - r.passed, cls: "fail", label: `${r.done - r.passed} not passed` },
        { value: Math.max(0, r.planned - r.done), cls: "na", label: `${Math.max(0, r.planned - r.done)} not run` },
      ], { width: 140, title: `${r.passed} of ${r.planned} passed` });
      body.append(el("tr", { "data-run": r.run_id },
        el("td", {}, pick("a", i === 1 || (runs.length === 1 && i === 0))), el("td", {}, pick("b", i === 0)),
        el("td", {}, link), el("td", { text: r.suite }), el("td", { text: r.status + (r.live ? " (live)" : "") }),
        el("td", { text: when(r.started_at) }), el("td", { class: "num", text: `${r.done}/${r.planned}` }),
        el("td", { class: "num", text: String(r.passed) }), el("td", {}, bar, " ", pct(r.pass_rate)),
        el("td", { class: "note", text: `${r.prompts.join(", ")} · ${r.models.join(", ")}` })));
    });
  } catch (error) {
    showError(document.getElementById("error"), error);
  } finally {
    aigc.ready();
  }
})();
