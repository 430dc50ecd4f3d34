// The playground: pick a prompt version, fill its inputs, stream a model's answer, watch the scores arrive, save a case.
"use strict";

(() => {
  const { api, request, sse, el, clear, num, showError } = aigc;
  const $ = (id) => document.getElementById(id);
  const state = { prompt: null, version: null, fields: [], original: "", output: "", rendered: null, abort: null };
  const params = new URLSearchParams(location.search);

  function hideError() { $("error").hidden = true; }
  function fail(error) { showError($("error"), error); }

  async function start() {
    const [prompts, models, suites] = await Promise.all([
      api("/v1/prompts"),
      api("/v1/models").catch(() => ({ data: [] })),
      api("/v1/score/suites").catch(() => []),
    ]);
    const byTask = {};
    for (const p of prompts) (byTask[p.task] = byTask[p.task] || []).push(p);
    for (const [task, list] of Object.entries(byTask)) {
      $("prompt").append(el("optgroup", { label: task }, list.map((p) => el("option", { value: p.id, text: p.id }))));
    }
    const models_ = (models.data || []).map((m) => m.id);
    for (const id of models_) $("model").append(el("option", { value: id, text: id }));
    if (!models_.length) $("model").append(el("option", { value: "", text: "(no model served)" }));
    for (const s of suites) $("evaluators").append(el("option", { value: s.name, text: `${s.name}: ${s.evaluators.join(", ")}` }));
    if (params.get("model") && models_.includes(params.get("model"))) $("model").value = params.get("model");
    if (params.get("evaluators")) $("evaluators").value = params.get("evaluators");
    const wanted = params.get("prompt");
    if (wanted && prompts.some((p) => p.id === wanted || p.name === wanted)) {
      $("prompt").value = prompts.find((p) => p.id === wanted || p.name === wanted).id;
    }
    await choosePrompt(params.get("version"));
  }

  async function choosePrompt(version) {
    hideError();
    const detail = await api(`/v1/prompts/${$("prompt").value}`);
    state.prompt = detail;
    $("prompt-description").textContent = detail.description;
    clear($("version"));
    for (const v of detail.versions.slice().reverse()) {
      const tag = detail.published.includes(v) ? "" : " (draft)";
      const labels = Object.entries(detail.labels).filter(([, lv]) => lv === v).map(([l]) => l);
      $("version").append(el("option", { value: v, text: v + tag + (labels.length ? ` [${labels.join(", ")}]` : "") }));
    }
    $("version").value = version && detail.versions.includes(version) ? version : detail.latest;
    if (!$("suite-file").value || $("suite-file").dataset.auto === "1") {
      $("suite-file").value = `${detail.name}.yaml`;
      $("suite-file").dataset.auto = "1";
    }
    await chooseVersion();
  }

  async function chooseVersion() {
    hideError();
    const v = await api(`/v1/prompts/${state.prompt.id}/${$("version").value}`);
    state.version = v;
    state.fields = v.inputs;
    state.original = v.source;
    $("source").value = v.source;
    $("draft-state").textContent = "Unedited: the version file is used.";
    if (v.model.max_tokens) $("max-tokens").value = v.model.max_tokens;
    if (v.model.temperature !== undefined) $("temperature").value = v.model.temperature;
    buildForm(v.inputs);
    const others = state.prompt.versions.filter((x) => x !== v.version);
    const diff = $("diff-against");
    const keep = diff.value;
    clear(diff).append(el("option", { value: "", text: "(no diff)" }), ...others.map((x) => el("option", { value: x, text: x })));
    diff.value = others.includes(keep) ? keep : "";
    await showDiff();
  }

  async function showDiff() {
    const other = $("diff-against").value;
    const pre = clear($("diff"));
    pre.hidden = !other;
    if (!other) return;
    const result = await api(`/v1/prompts/${state.prompt.id}/diff?a=${encodeURIComponent(other)}&b=${encodeURIComponent(state.version.version)}`);
    const lines = result.diff ? result.diff.split("\n") : ["(the two versions are identical)"];
    for (const line of lines) {
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
      pre.append(el("span", { class: cls, text: line + "\n" }));
    }
  }

  function fieldId(name) { return `in-${name}`; }

  function buildForm(inputs) {
    const box = $("inputs");
    clear(box).append(el("legend", { text: "Inputs" }));
    if (!inputs.length) box.append(el("p", { class: "note", text: "This prompt takes no inputs." }));
    for (const f of inputs) {
      const id = fieldId(f.name);
      const label = el("label", { for: id }, f.name, f.required ? el("span", { class: "req", text: " *", title: "required" }) : null,
        el("span", { class: "note", text: ` (${f.type === "list" ? `list of ${f.items || "string"}` : f.type})` }));
      const control = makeControl(f, id);
      const help = f.description ? el("span", { class: "help", id: `${id}-help`, text: f.description }) : null;
      if (help) control.setAttribute("aria-describedby", help.id);
      box.append(el("div", { class: "field" }, f.type === "boolean" ? el("div", {}, control, " ", label) : [label, control], help));
      setValue(f, f.default);
    }
  }

  function makeControl(f, id) {
    const common = { id, name: f.name, "data-type": f.type, required: f.required };
    if (f.enum && f.type !== "list") {
      const select = el("select", common);
      if (!f.required || f.default === null) select.append(el("option", { value: "", text: f.required ? "(choose)" : "(default)" }));
      for (const value of f.enum) select.append(el("option", { value: JSON.stringify(value), text: String(value) }));
      return select;
    }
    if (f.enum && f.type === "list") {
      const select = el("select", { ...common, multiple: true, size: Math.min(6, f.enum.length) });
      for (const value of f.enum) select.append(el("option", { value: JSON.stringify(value), text: String(value) }));
      return select;
    }
    if (f.type === "boolean") return el("input", { ...common, type: "checkbox" });
    if (f.type === "integer" || f.type === "number") return el("input", { ...common, type: "number", step: f.type === "integer" ? "1" : "any" });
    if (f.type === "list") return el("textarea", { ...common, rows: 3, placeholder: "one item per line" });
    if (f.type === "object") return el("textarea", { ...common, rows: 4, placeholder: "a JSON object" });
    const long = !f.max_length || f.max_length > 120;
    return long ? el("textarea", { ...common, rows: 3, maxlength: f.max_length || undefined })
      : el("input", { ...common, type: "text", size: 40, maxlength: f.max_length || undefined });
  }

  function setValue(f, value) {
    const node = $(fieldId(f.name));
    if (!node) return;
    if (f.type === "boolean") { node.checked = value === true; return; }
    if (value === null || value === undefined) { if (node.tagName !== "SELECT") node.value = ""; return; }
    if (f.enum && f.type === "list") {
      const wanted = new Set((value || []).map((x) => JSON.stringify(x)));
      for (const o of node.options) o.selected = wanted.has(o.value);
    } else if (f.enum) node.value = JSON.stringify(value);
    else if (f.type === "list") node.value = value.join("\n");
    else if (f.type === "object") node.value = JSON.stringify(value, null, 2);
    else node.value = String(value);
  }

  function readInputs() {
    const values = {};
    for (const f of state.fields) {
      const node = $(fieldId(f.name));
      if (f.type === "boolean") { values[f.name] = node.checked; continue; }
      if (f.enum && f.type === "list") { values[f.name] = [...node.selectedOptions].map((o) => JSON.parse(o.value)); continue; }
      const raw = node.value;
      if (raw === "") continue; // missing: the server says which required input it is, or fills the default
      if (f.enum) values[f.name] = JSON.parse(raw);
      else if (f.type === "integer" || f.type === "number") values[f.name] = Number(raw);
      else if (f.type === "list") values[f.name] = raw.split("\n").map((x) => x.trim()).filter(Boolean).map((x) => (f.items === "integer" || f.items === "number" ? Number(x) : x));
      else if (f.type === "object") {
        try { values[f.name] = JSON.parse(raw); } catch (e) { throw new Error(`input ${f.name}: not a JSON object (${e.message})`); }
      } else values[f.name] = raw;
    }
    return values;
  }

  function fillExample() {
    for (const f of state.fields) if (f.example !== null && f.example !== undefined) setValue(f, f.example);
  }

  function isDraft() { return $("source").value !== state.original; }

  async function render() {
    const inputs = readInputs();
    const rendered = isDraft()
      ? await api("/v1/prompts/render-draft", { json: { source: $("source").value, inputs, prompt: state.prompt.id } })
      : await api(`/v1/prompts/${state.prompt.id}/render`, { json: { version: state.version.version, inputs } });
    state.rendered = { ...rendered, inputsGiven: inputs };
    const box = clear($("messages"));
    for (const m of rendered.messages) box.append(el("div", { class: "msg" }, el("div", { class: "role", text: m.role }), el("pre", { text: m.content })));
    return rendered;
  }

  async function run(event) {
    if (event) event.preventDefault();
    hideError();
    if (state.abort) return;
    const button = $("run");
    button.disabled = true;
    $("stop").disabled = false;
    clear($("scores"));
    $("score-summary").textContent = "";
    $("case-result").textContent = "";
    const out = clear($("output"));
    state.output = "";
    state.abort = new AbortController();
    try {
      const rendered = await render();
      $("gen-state").textContent = "generating…";
      const body = {
        model: $("model").value, messages: rendered.messages, stream: true,
        max_tokens: Number($("max-tokens").value) || undefined, temperature: Number($("temperature").value),
      };
      const started = performance.now();
      const response = await request("/v1/chat/completions", { json: body, signal: state.abort.signal });
      let first = null;
      let finish = "";
      for await (const { data } of sse(response)) {
        if (data === "[DONE]") break;
        if (data && data.error) throw new Error(data.error.message || "the model failed");
        const choice = data && data.choices && data.choices[0];
        if (!choice) continue;
        const piece = (choice.delta && choice.delta.content) || "";
        if (piece) {
          if (first === null) first = performance.now() - started;
          state.output += piece;
          out.textContent = state.output;
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      const total = (performance.now() - started) / 1000;
      $("gen-state").textContent = `done in ${total.toFixed(2)} s` + (first !== null ? `, first token after ${(first / 1000).toFixed(2)} s` : "") + (finish ? ` (${finish})` : "");
      out.dataset.done = "1";
      await score(rendered);
    } catch (error) {
      if (error.name !== "AbortError") {
        fail(error);
        $("gen-state").textContent = "failed (see the error above)";
      } else $("gen-state").textContent = "stopped";
    } finally {
      state.abort = null;
      button.disabled = false;
      $("stop").disabled = true;
    }
  }

  async function score(rendered) {
    const list = $("scores");
    const body = {
      prompt: state.prompt.id, version: state.version.version, inputs: state.rendered.inputsGiven, output: state.output,
      evaluators: $("evaluators").value || undefined,
    };
    if (isDraft()) {
      $("score-summary").textContent = "Scored against the version file's checks (the edited draft is not saved).";
    }
    const response = await request("/v1/score", { json: body });
    for await (const { event, data } of sse(response)) {
      if (event === "plan") {
        $("score-summary").textContent = `scoring with ${data.suite} (${data.evaluators.length} evaluators)…`;
      } else if (event === "score") {
        list.append(scoreItem(data));
      } else if (event === "summary") {
        const verdict = data.passed ? "passed" : `failed: ${data.failed.join(", ")}`;
        $("score-summary").textContent = `${data.scored} scores in ${num(data.seconds)} s; ${verdict}` + (data.errors.length ? `; errors: ${data.errors.join(", ")}` : "");
        $("score-summary").dataset.done = "1";
      }
    }
    void rendered;
  }

  function scoreItem(s) {
    let badge;
    if (s.error) badge = el("span", { class: "badge err", text: "error" });
    else if (!s.applicable) badge = el("span", { class: "badge", text: "n/a" });
    else if (s.advisory) badge = el("span", { class: "badge adv", text: "advisory" });
    else if (s.passed === null) badge = el("span", { class: "badge", text: "no verdict" });
    else badge = el("span", { class: `badge ${s.passed ? "pass" : "fail"}`, text: s.passed ? "pass" : "fail" });
    return el("li", { "data-evaluator": s.name },
      el("strong", { text: s.name }), " ", badge, " ", el("span", { text: num(s.value) }),
      s.threshold !== null ? el("span", { class: "note", text: ` (threshold ${num(s.threshold)})` }) : null,
      el("div", { class: "reason", text: s.error || s.reason }));
  }

  async function saveCase(event) {
    event.preventDefault();
    hideError();
    const result = $("case-result");
    result.textContent = "";
    try {
      const body = {
        suite_file: $("suite-file").value.trim(), prompt: state.prompt.id, version: state.version.version, inputs: readInputs(),
      };
      if ($("case-id").value.trim()) body.case_id = $("case-id").value.trim();
      if ($("use-reference").checked) {
        if (!state.output) throw new Error("there is no output to keep as reference yet: run the prompt first");
        body.reference = state.output;
      }
      const saved = await api("/v1/cases", { json: body });
      result.className = "ok";
      result.textContent = `Saved case ${saved.case_id} to ${saved.path} (${saved.cases} cases${saved.created ? ", new suite" : ""}). Run it with: ${saved.command}`;
      result.dataset.caseId = saved.case_id;
    } catch (error) {
      fail(error);
    }
  }

  $("prompt").addEventListener("change", () => choosePrompt().catch(fail));
  $("version").addEventListener("change", () => chooseVersion().catch(fail));
  $("diff-against").addEventListener("change", () => showDiff().catch(fail));
  $("fill-example").addEventListener("click", fillExample);
  $("render").addEventListener("click", () => { hideError(); render().catch(fail); });
  $("source").addEventListener("input", () => {
    $("draft-state").textContent = isDraft() ? "Edited: renders as a draft in the sandbox." : "Unedited: the version file is used.";
  });
  $("suite-file").addEventListener("input", () => { $("suite-file").dataset.auto = "0"; });
  $("inputs-form").addEventListener("submit", run);
  $("inputs-form").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(e); });
  $("stop").addEventListener("click", () => state.abort && state.abort.abort());
  $("case-form").addEventListener("submit", saveCase);
  start().catch(fail).finally(aigc.ready);
})();
