"""/v1/prompts, /v1/score and /v1/cases of `aigc serve` through real HTTP (uvicorn on a free port, httpx), over the
built-in prompt library; "save as case" files are then loaded by the runner and run by `aigc eval` itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aigc_app.runner import load_eval_suite, resolve_cases
from aigc_app.server import ServeSettings
from aigc_app.server.testing import running_server

QUICK = ["adherence", "pii", "degeneration"]  # offline evaluators that need no model
SOCIAL = {"platform": "x", "topic": "The Aurora Trail 2 trail shoe is out today."}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-prompts")


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[httpx.Client]:
    config = folder / "aigc.yaml"
    config.write_text("models: {}\n")
    settings = ServeSettings(port=0, config=config, store=folder / "results.db", suites_dir=folder / "suites")
    with running_server(settings) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield http


def message(response: httpx.Response) -> str:
    body = response.json()
    return body["error"]["message"] if "error" in body else body["detail"]


# -- prompts --------------------------------------------------------------------------------------------------------


def test_list_shows_versions_labels_and_task(client: httpx.Client) -> None:
    prompts = {p["id"]: p for p in client.get("/v1/prompts").raise_for_status().json()}
    social = prompts["marketing/social_post"]
    assert social["versions"] == ["1.0.0", "1.1.0"] and social["task"] == "marketing"
    assert social["latest"] == social["published"][-1] and social["description"]
    assert {"writing/draft", "education/quiz"} <= set(prompts)


def test_show_gives_the_typed_input_schema(client: httpx.Client) -> None:
    detail = client.get("/v1/prompts/marketing/social_post").raise_for_status().json()
    fields = {f["name"]: f for f in detail["inputs"]}
    assert fields["platform"]["enum"] == ["x", "linkedin", "instagram"] and fields["platform"]["required"]
    assert fields["emoji"]["type"] == "boolean" and fields["emoji"]["default"] is True
    assert fields["hashtags"]["type"] == "list" and fields["hashtags"]["items"] == "string"
    assert fields["tone"]["default"] == "conversational" and not fields["tone"]["required"]
    assert fields["topic"]["example"] and fields["topic"]["max_length"] == 1000
    bare = client.get("/v1/prompts/social_post").raise_for_status().json()  # a unique bare name works too
    assert bare["id"] == "marketing/social_post"


def test_version_has_source_and_metadata(client: httpx.Client) -> None:
    v = client.get("/v1/prompts/marketing/social_post/1.0.0").raise_for_status().json()
    assert v["ref"] == "marketing/social_post@1.0.0" and v["published"]
    assert v["source"].startswith("---\nname: social_post\nversion: 1.0.0")
    assert len(v["hash"]) == 64 and v["changelog"]
    missing = client.get("/v1/prompts/marketing/social_post/9.9.9")
    assert missing.status_code == 404 and "versions: 1.0.0, 1.1.0" in message(missing)


def test_unknown_prompt_is_404_with_near_names(client: httpx.Client) -> None:
    for path in ("/v1/prompts/social_pots", "/v1/prompts/social_pots/1.0.0"):
        response = client.get(path)
        assert response.status_code == 404
        assert "social_pots" in message(response) and "social_post" in message(response)
    response = client.post("/v1/prompts/marketing/social_pots/render", json={"inputs": SOCIAL})
    assert response.status_code == 404 and "marketing/social_post" in message(response)


def test_render_validates_typed_inputs(client: httpx.Client) -> None:
    ok = client.post("/v1/prompts/marketing/social_post/render", json={"version": "1.1.0", "inputs": SOCIAL})
    body = ok.raise_for_status().json()
    assert body["ref"] == "marketing/social_post@1.1.0" and [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Aurora Trail 2" in body["messages"][1]["content"]
    assert body["inputs"]["tone"] == "conversational"  # defaults filled in

    missing = client.post("/v1/prompts/marketing/social_post/render", json={"inputs": {"platform": "x"}})
    assert missing.status_code == 400 and "missing required input(s) topic" in message(missing)
    wrong = client.post("/v1/prompts/marketing/social_post/render", json={"inputs": {**SOCIAL, "platform": "myspace"}})
    assert wrong.status_code == 400 and "platform" in message(wrong) and "myspace" in message(wrong)
    typo = client.post("/v1/prompts/marketing/social_post/render", json={"inputs": {**SOCIAL, "topik": "x"}})
    assert typo.status_code == 400 and "topik: not a declared input" in message(typo)


def test_diff_of_two_versions(client: httpx.Client) -> None:
    body = client.get("/v1/prompts/marketing/social_post/diff", params={"a": "1.0.0", "b": "1.1.0"}).json()
    assert body["diff"].startswith("--- marketing/social_post@1.0.0\n+++ marketing/social_post@1.1.0\n")
    assert "-version: 1.0.0\n+version: 1.1.0\n" in body["diff"]
    assert client.get("/v1/prompts/marketing/social_post/diff", params={"a": "1.0.0", "b": "3.0.0"}).status_code == 404


def test_render_draft_runs_in_the_sandbox(client: httpx.Client) -> None:
    source = client.get("/v1/prompts/marketing/social_post/1.1.0").json()["source"]
    edited = source.replace("You are a social media manager", "You are a terse social media manager")
    body = {"source": edited, "inputs": SOCIAL, "prompt": "marketing/social_post"}
    rendered = client.post("/v1/prompts/render-draft", json=body).raise_for_status().json()
    assert rendered["messages"][0]["content"].startswith("You are a terse social media manager")  # partials resolve

    attack = edited.replace("{{ topic }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}", 1)
    blocked = client.post("/v1/prompts/render-draft", json={**body, "source": attack})
    assert blocked.status_code == 400
    assert "not allowed" in message(blocked) and ".jinja:" in message(blocked)  # file:line

    front = "---\nname: d\nversion: 1.0.0\ntask: other\ndescription: x\nchangelog: x\n---\n"
    bomb = front + "{% for i in range(10**9) %}{% endfor %}"
    bounded = client.post("/v1/prompts/render-draft", json={"source": bomb, "inputs": {}})
    assert (
        bounded.status_code == 400 and "blocked by the sandbox" in message(bounded) and ".jinja:8" in message(bounded)
    )

    undeclared = source.replace("{{ topic }}", "{{ topick }}", 1)
    bad = client.post("/v1/prompts/render-draft", json={**body, "source": undeclared})
    assert bad.status_code == 400 and "'topick' is used but not declared" in message(bad)


def test_openapi_documents_the_routes(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").raise_for_status().json()
    paths = schema["paths"]
    for path in ("/v1/prompts", "/v1/prompts/{name}/{version}", "/v1/prompts/render-draft", "/v1/score", "/v1/cases"):
        assert path in paths, path
    show = paths["/v1/prompts/{name}/{version}"]["get"]
    assert show["tags"] == ["prompts"] and show["summary"]
    assert show["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PromptVersion")
    assert "InputField" in schema["components"]["schemas"]
    missing = show["responses"]["404"]["content"]["application/json"]["schema"]  # errors are documented too
    assert (
        missing["$ref"].endswith("/ErrorBody") and "error" in schema["components"]["schemas"]["ErrorBody"]["properties"]
    )


# -- scoring --------------------------------------------------------------------------------------------------------


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


def test_score_streams_one_event_per_evaluator_then_a_summary(client: httpx.Client) -> None:
    output = "The Aurora Trail 2 trail shoe is out today: drains water, grips rock. Write to ann@example.com"
    body = {
        "prompt": "marketing/social_post",
        "version": "1.1.0",
        "inputs": SOCIAL,
        "evaluators": QUICK,
        "output": output,
    }
    with client.stream("POST", "/v1/score", json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        seen = list(events(response))
    kinds = [kind for kind, _ in seen]
    assert kinds == ["plan", "score", "score", "score", "summary"]
    assert seen[0][1]["evaluators"] == QUICK and seen[0][1]["task"] == "marketing"
    scores = {data["name"]: data for kind, data in seen if kind == "score"}
    assert scores["pii"]["passed"] is False and "EMAIL" in scores["pii"]["reason"]
    assert scores["degeneration"]["passed"] is True
    summary = seen[-1][1]
    assert summary["passed"] is False and "pii" in summary["failed"] and summary["scored"] == 3


def test_score_defaults_to_the_task_suite(client: httpx.Client) -> None:
    body = {"prompt": "writing/draft", "inputs": {"title": "t", "outline": "o", "audience": "a"}, "output": "Hi."}
    with client.stream("POST", "/v1/score", json=body) as response:
        kind, plan = next(events(response))  # read the plan only: the writing suite's models need not load
    assert kind == "plan" and plan["suite"] == "writing" and "slor" in plan["evaluators"]


def test_score_bad_requests(client: httpx.Client) -> None:
    body = {"prompt": "marketing/social_post", "inputs": SOCIAL, "output": "x", "evaluators": "markting"}
    unknown = client.post("/v1/score", json=body)
    assert unknown.status_code == 400 and "did you mean 'marketing'" in message(unknown)
    no_path = client.post("/v1/score", json={**body, "evaluators": "../../etc/suite.yaml"})
    assert no_path.status_code == 400
    missing = client.post("/v1/score", json={**body, "evaluators": QUICK, "inputs": {"platform": "x"}})
    assert missing.status_code == 400 and "topic" in message(missing)
    assert client.post("/v1/score", json={**body, "prompt": "nope"}).status_code == 404


# -- save as case ---------------------------------------------------------------------------------------------------


def save(client: httpx.Client, suite_file: str, **extra: Any) -> httpx.Response:
    body = {"suite_file": suite_file, "prompt": "marketing/social_post", "version": "1.1.0", "inputs": SOCIAL}
    return client.post("/v1/cases", json={**body, **extra})


def test_save_as_case_creates_then_appends_a_yaml_suite(client: httpx.Client, folder: Path) -> None:
    first = save(client, "social.yaml", reference="Aurora Trail 2: out today.", evaluators=QUICK)
    assert first.status_code == 201, first.text
    saved = first.json()
    assert saved["created"] and saved["cases"] == 1
    path = folder / "suites" / "social.yaml"
    assert Path(saved["path"]) == path.resolve()
    second = save(client, "social.yaml", inputs={"platform": "linkedin", "topic": "Shiftly rotas"}, case_id="rota")
    assert second.status_code == 201 and second.json()["cases"] == 2 and not second.json()["created"]
    suite = load_eval_suite(path)
    cases = resolve_cases(suite)
    assert [c.id for c in cases] == [saved["case_id"], "rota"]
    assert cases[0].reference == "Aurora Trail 2: out today." and cases[1].vars["platform"] == "linkedin"
    assert suite.prompts == ["marketing/social_post@1.1.0"]
    assert yaml.safe_load(path.read_text())["evaluators"] == [{"evaluator": e} for e in QUICK]
    again = save(client, "social.yaml", case_id="rota")
    assert again.status_code == 409 and "rota" in message(again)
    other = client.post(
        "/v1/cases", json={"suite_file": "social.yaml", "prompt": "writing/rewrite", "inputs": {"text": "x"}}
    )
    assert other.status_code == 400 and "not writing/rewrite" in message(other)
    assert len(resolve_cases(load_eval_suite(path))) == 2  # refused writes left the file as it was


def test_save_as_case_into_jsonl_with_a_suite_beside_it(client: httpx.Client, folder: Path) -> None:
    assert save(client, "team/social.jsonl").status_code == 201
    saved = save(client, "team/social.jsonl", inputs={"platform": "instagram", "topic": "Trail shoes"}).json()
    assert saved["suite"] == str((folder / "suites" / "team" / "social.yaml").resolve()) and saved["cases"] == 2
    lines = (folder / "suites" / "team" / "social.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["vars"]["platform"] == "instagram"
    assert load_eval_suite(saved["suite"]).evaluator_suite == "marketing"  # the task's evaluator suite


def test_save_as_case_refuses_bad_paths_and_inputs(client: httpx.Client, folder: Path) -> None:
    for bad in ("../escape.yaml", "/etc/escape.yaml", "a/../../escape.yaml", "..\\escape.yaml", "notes.txt", ""):
        response = save(client, bad)
        assert response.status_code == 400, bad
        assert "suite_file" in message(response)
    assert not (folder / "escape.yaml").exists()
    missing = save(client, "fresh.yaml", inputs={"platform": "x"})
    assert missing.status_code == 400 and "topic" in message(missing)
    assert not (folder / "suites" / "fresh.yaml").exists()


def test_a_saved_suite_runs_with_aigc_eval(client: httpx.Client, folder: Path, openai_server: Any) -> None:
    saved = save(client, "runnable.yaml", evaluators=QUICK).json()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AIGC_"))}
    env |= {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": "sk-test", "OMP_NUM_THREADS": "1",
            "AIGC_STORE": str(folder / "eval.db")}  # fmt: skip
    args = [sys.executable, "-m", "aigc_app.cli", "eval", saved["suite"], "--model", "openai:gpt-test", "--quiet"]
    result = subprocess.run(args, env=env, cwd=folder, capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr  # 1: a case failed its checks; the run itself worked
    assert "Traceback" not in result.stderr
    from aigc_app.store import ResultsStore

    with ResultsStore(folder / "eval.db") as store:
        run = store.load_run("latest")
    assert [c.case_id for c in run.cases] == [saved["case_id"]] and run.info.status == "finished"
