"""/v1/runs and the report viewer's pages of `aigc serve` through real HTTP, over a real SQLite store holding two
runs of one suite written through ResultsStore.record_case."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from aigc_app.compare import compare_runs, comparison_dict
from aigc_app.reports.sample import sample_results
from aigc_app.server import ServeSettings
from aigc_app.server.testing import running_server
from aigc_app.store import ResultsStore

RUN_A, RUN_B = "r20261201-100000-aaaa", "r20261201-110000-bbbb"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve-runs") / "results.db"
    with ResultsStore(path) as store:
        for run_id, seed, started in ((RUN_A, 1, 1_796_130_000.0), (RUN_B, 2, 1_796_140_000.0)):
            results = sample_results(96, seed=seed, run_id=run_id)
            store.create_run(replace(results.info, started_at=started))
            for case in results.cases:  # another seed per run: each run has its own generations
                store.record_case(replace(case, key="", seed=(case.seed or 0) + seed))
    return path


def settings_for(store_path: Path, **extra: object) -> ServeSettings:
    config = store_path.parent / "aigc.yaml"
    config.write_text("models: {}\n")
    return ServeSettings(port=0, config=config, store=store_path, suites_dir=store_path.parent / "suites", **extra)


@pytest.fixture(scope="module")
def client(store_path: Path) -> Iterator[httpx.Client]:
    with running_server(settings_for(store_path)) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield http


def message(response: httpx.Response) -> str:
    body = response.json()
    return body["error"]["message"] if "error" in body else body["detail"]


def test_list_is_newest_first_with_pass_counts(client: httpx.Client, store_path: Path) -> None:
    rows = client.get("/v1/runs").raise_for_status().json()
    assert [r["run_id"] for r in rows] == [RUN_B, RUN_A]
    with ResultsStore(store_path) as store:
        expected = {s.info.run_id: s.passed for s in store.summaries()}
    assert {r["run_id"]: r["passed"] for r in rows} == expected
    assert rows[0]["done"] == rows[0]["planned"] == 96 and rows[0]["suite"] == "marketing-ab"
    assert client.get("/v1/runs", params={"limit": 1}).json()[0]["run_id"] == RUN_B


def test_show_has_the_per_evaluator_summary(client: httpx.Client, store_path: Path) -> None:
    run = client.get(f"/v1/runs/{RUN_A[:-2]}").raise_for_status().json()  # a unique prefix
    assert run["run_id"] == RUN_A and len(run["variants"]) == 4
    with ResultsStore(store_path) as store:
        results = store.load_run(RUN_A)
    figures = {f["evaluator"]: f for f in run["by_evaluator"]}
    assert list(figures) == results.evaluator_names
    pii = [s for c in results.cases for s in c.scores if s.evaluator == "pii" and not s.rescore]
    assert figures["pii"]["scored"] == len(pii)
    assert figures["pii"]["not_applicable"] == sum(not s.applicable for s in pii) > 0
    assert figures["pii"]["passed"] == sum(s.passed is True and s.applicable and s.error is None for s in pii)
    assert figures["readability"]["advisory"] is True
    assert sum(v["cases"] for v in run["variants"]) == 96
    assert client.get("/v1/runs/latest").json()["run_id"] == RUN_B


def test_unknown_run_is_404_with_near_ids(client: httpx.Client) -> None:
    response = client.get("/v1/runs/r20261201-100000-aaab")
    assert response.status_code == 404
    assert "no run 'r20261201-100000-aaab'" in message(response) and RUN_A in message(response)
    assert client.get("/v1/runs/r20261201-100000-aaab/report").status_code == 404


def test_report_downloads_in_every_format(client: httpx.Client) -> None:
    html = client.get(f"/v1/runs/{RUN_A}/report").raise_for_status()
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-disposition"] == f'attachment; filename="{RUN_A}.html"'
    assert RUN_A in html.text and "<svg" in html.text
    inline = client.get(f"/v1/runs/{RUN_A}/report", params={"format": "html", "download": "false"})
    assert inline.headers["content-disposition"].startswith("inline")
    assert inline.headers["content-security-policy"] == "sandbox allow-scripts"  # opened alone: no cookie, no API
    md = client.get(f"/v1/runs/{RUN_A}/report", params={"format": "md"}).raise_for_status()
    assert md.headers["content-type"].startswith("text/markdown") and RUN_A in md.text
    data = client.get(f"/v1/runs/{RUN_A}/report", params={"format": "json"}).raise_for_status().json()
    assert json.dumps(data).count(RUN_A) >= 1
    junit = client.get(f"/v1/runs/{RUN_A}/report", params={"format": "junit"}).raise_for_status()
    assert ET.fromstring(junit.content).tag in ("testsuites", "testsuite")
    pdf = client.get(f"/v1/runs/{RUN_A}/report", params={"format": "pdf"})
    assert pdf.status_code == 400 and pdf.json()["error"]["param"] == "format"
    assert pdf.json()["error"]["message"] == "format: Input should be 'html', 'md', 'json' or 'junit'"


def test_every_v1_route_answers_bad_input_in_openai_s_shape(client: httpx.Client) -> None:
    """One error shape under /v1 (OpenAI's, as 400), in the answers and in the OpenAPI schema."""
    bad_body = client.post("/v1/prompts/marketing/social_post/render", json={"inputs": 3})
    assert bad_body.status_code == 400, bad_body.text
    assert bad_body.json()["error"] == {
        "message": "inputs: Input should be a valid dictionary",
        "type": "invalid_request_error",
        "param": "inputs",
        "code": None,
    }
    schema = client.get("/openapi.json").json()
    v1 = {
        (path, method): op
        for path, ops in schema["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
    }
    assert v1 and not [where for where, op in v1.items() if "422" in op["responses"]]
    posted = [op for (_, method), op in v1.items() if method == "post"]
    assert all("400" in op["responses"] for op in posted)


def test_compare_is_compare_runs_as_json(client: httpx.Client, store_path: Path) -> None:
    body = client.get("/v1/runs/compare", params={"a": RUN_A, "b": RUN_B}).raise_for_status().json()
    with ResultsStore(store_path) as store:
        expected = comparison_dict(compare_runs(store.load_run(RUN_A), store.load_run(RUN_B)))
    assert body == json.loads(json.dumps(expected))
    assert body["run_a"] == RUN_A and len(body["variants"]) == 4
    row = body["variants"][0]["rows"][0]
    assert {"effect", "effect_ci", "p", "p_holm", "verdict", "mde_sentence"} <= set(row)


def test_compare_is_documented_with_its_types(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    compare = schema["paths"]["/v1/runs/compare"]["get"]
    assert compare["tags"] == ["runs"] and compare["summary"]
    assert compare["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunComparison")
    row = schema["components"]["schemas"]["ComparedRow"]["properties"]
    assert {"effect", "effect_ci", "p_holm", "verdict"} <= set(row)
    assert "RunDetail" in schema["components"]["schemas"]


def test_compare_bad_refs(client: httpx.Client) -> None:
    unknown = client.get("/v1/runs/compare", params={"a": "r20261201-100000-aaab", "b": RUN_B})
    assert unknown.status_code == 404 and RUN_A in message(unknown)
    variants = client.get("/v1/runs/compare", params={"a": RUN_A, "b": RUN_B, "variant_a": "nope"})
    assert variants.status_code == 400 and "nope" in message(variants)
    itself = client.get("/v1/runs/compare", params={"a": RUN_A, "b": RUN_A})
    assert itself.status_code == 400 and "with variant_a and variant_b" in message(itself)  # not the CLI's flags
    assert "--variant" not in message(itself)
    model = " | hf:SmolLM2-135M-Instruct"
    pair = {
        "a": RUN_A,
        "b": RUN_A,
        "variant_a": "marketing/ad_copy@1.0.0" + model,
        "variant_b": "marketing/ad_copy@1.1.0" + model,
    }
    assert client.get("/v1/runs/compare", params=pair).status_code == 200


def test_pages_and_static_files(client: httpx.Client) -> None:
    for path in ("/", "/playground", "/runs", f"/runs/{RUN_A}", f"/compare?a={RUN_A}&b={RUN_B}"):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http://" not in page.text and "https://" not in page.text  # nothing from another origin
    css = client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/playground.js").headers["content-type"].startswith("text/javascript")
    for bad in ("/static/..%2Fpages.py", "/static/pages.py", "/static/nope.js", "/static/.hidden.js"):
        assert client.get(bad).status_code == 404, bad


def test_with_an_api_key_pages_use_the_cookie_and_never_show_the_key(store_path: Path) -> None:
    key = "sk-serve-test-0123456789"
    settings = settings_for(store_path, api_key=SecretStr(key))
    with running_server(settings) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        assert http.get("/v1/runs").status_code == 401
        assert http.get("/v1/runs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        page = http.get(f"/runs/{RUN_A}", params={"key": key}, follow_redirects=True)
        assert page.status_code == 200 and key not in page.text
        assert str(page.url).endswith(f"/runs/{RUN_A}")  # the key left the URL
        assert http.get(f"/v1/runs/{RUN_A}").status_code == 200  # the session cookie lets the page's script in
        missing = http.get("/v1/runs/r20261201-100000-aaab")
        assert missing.status_code == 404 and key not in missing.text
