// Home: links, and the five newest runs.
"use strict";

(async () => {
  const { api, el, clear, pct, when } = aigc;
  const list = document.getElementById("recent");
  try {
    const runs = await api("/v1/runs?limit=5");
    clear(list);
    if (!runs.length) list.append(el("li", { class: "note", text: "No runs yet: run `aigc eval SUITE`." }));
    for (const r of runs) {
      list.append(el("li", {}, el("a", { href: `/runs/${encodeURIComponent(r.run_id)}`, text: r.run_id }),
        ` ${r.suite}, ${r.status}, ${r.passed}/${r.done} passed (${pct(r.pass_rate)}), ${when(r.started_at)}`));
    }
  } catch (error) {
    clear(list).append(el("li", { class: "alert", text: String(error.message || error) }));
  } finally {
    aigc.ready();
  }
})();
