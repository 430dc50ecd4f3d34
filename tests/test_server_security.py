"""`aigc serve` security: the API key on every route but /health (bearer, sign-in cookie, ?key= exchange), the
body size limit, loopback-only binding without a key, and no key in any answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
import yaml

from aigc_app.server import ServeSettings
from aigc_app.server.security import SESSION_COOKIE, InsecureBind, check_bind, is_loopback

KEY = "sk-serve-Secret-4242"


@pytest.fixture(scope="module")
def locked(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory, serve_hermetic):
    folder = tmp_path_factory.mktemp("serve-locked")
    config = folder / "aigc.yaml"
    config.write_text(yaml.safe_dump({"models": {"local": {"model": f"hf:{tiny_model_path}"}}}))
    settings = ServeSettings(config=config, port=0, api_key=KEY, max_body_bytes=4000, store=folder / "r.db")
    with serve_hermetic(settings) as server:
        yield server


def _no_key(response: httpx.Response) -> httpx.Response:
    assert KEY not in response.text and KEY not in str(response.headers)
    return response


def test_health_is_open_and_everything_else_needs_the_key(locked) -> None:
    with httpx.Client(base_url=locked.base_url, timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        for path in ("/v1/models", "/openapi.json", "/docs", "/v1/prompts", "/v1/runs"):
            response = _no_key(http.get(path))
            assert response.status_code == 401, path
            assert response.json()["error"]["type"] == "authentication_error"
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = _no_key(http.get("/v1/models", headers={"Authorization": "Bearer sk-serve-Secret-4243"}))
        assert wrong.status_code == 401
        right = http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert right.status_code == 200 and right.json()["object"] == "list"
        post = _no_key(http.post("/v1/chat/completions", json={"model": "x", "messages": []}))
        assert post.status_code == 401


def test_openai_client_with_and_without_the_key(locked, tiny_model_path: Path) -> None:
    model = f"hf:{tiny_model_path}"
    bad = openai.OpenAI(base_url=locked.base_url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert KEY not in str(info.value.body)
    good = openai.OpenAI(base_url=locked.base_url + "/v1", api_key=KEY, max_retries=0)
    answer = good.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert answer.choices[0].message.content
    # Errors of an authorized client never carry the key either.
    with pytest.raises(openai.NotFoundError) as missing:
        good.chat.completions.create(model=KEY, messages=[{"role": "user", "content": "hi"}])
    assert KEY not in str(missing.value.body) and "[redacted]" in missing.value.body["message"]


def test_pages_sign_in_by_form_or_one_time_key_exchange(locked) -> None:
    with httpx.Client(base_url=locked.base_url, timeout=30) as http:
        page = http.get("/v1/models", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fv1%2Fmodels"
        form = _no_key(http.get("/login?next=/v1/models"))
        assert form.status_code == 200 and '<input id="key" name="key" type="password"' in form.text
        wrong = _no_key(http.post("/login?next=/v1/models", data={"key": "nope"}))
        assert wrong.status_code == 401 and "Wrong key" in wrong.text
        signed = _no_key(http.post("/login?next=/v1/models", data={"key": KEY}))
        assert signed.status_code == 303 and signed.headers["location"] == "/v1/models"
        cookie = http.cookies[SESSION_COOKIE]
        assert cookie and KEY not in cookie
        assert http.get("/v1/models").status_code == 200  # the cookie is the key now
        outside = http.post("/login?next=//evil.example/x", data={"key": KEY})
        assert outside.headers["location"] == "/"  # no open redirect
    with httpx.Client(base_url=locked.base_url, timeout=30) as http:
        exchange = _no_key(http.get("/v1/models", params={"key": KEY, "x": "1"}))
        assert exchange.status_code == 303 and exchange.headers["location"] == "/v1/models?x=1"
        assert http.get("/v1/models").status_code == 200
        assert _no_key(http.get("/v1/models", params={"key": "nope"})).status_code == 401  # a wrong key is refused


def test_body_over_the_limit_is_413_declared_or_streamed(locked) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    with httpx.Client(base_url=locked.base_url, timeout=30, headers=headers) as http:
        declared = _no_key(http.post("/v1/chat/completions", json=big))
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "body_too_large"

        def chunks():
            for _ in range(10):
                yield b"x" * 1000

        streamed = _no_key(http.post("/v1/chat/completions", content=chunks()))
        assert streamed.status_code == 413
        small = http.post("/v1/chat/completions", content=b"{}")
        assert small.status_code == 400  # under the limit: on to validation


def test_loopback_rules() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", KEY)
    with pytest.raises(InsecureBind, match=r"refusing to listen on 0\.0\.0\.0 without an API key"):
        check_bind("0.0.0.0", None)


def test_unknown_route_and_method_in_openai_shape(aigc_server) -> None:
    with httpx.Client(base_url=aigc_server.base_url, timeout=30) as http:
        missing = http.post("/v1/completions-typo", json={})
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
        wrong = http.get("/v1/chat/completions")
        assert wrong.status_code == 405 and "error" in wrong.json()
        broken = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]


def test_other_sites_and_rebound_names_are_refused(aigc_server, locked) -> None:
    with httpx.Client(base_url=aigc_server.base_url, timeout=30) as http:
        same = http.get("/v1/models", headers={"Origin": aigc_server.base_url})
        assert same.status_code == 200
        foreign = http.post("/v1/chat/completions", json={}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and "cross-origin" in foreign.json()["error"]["message"]
        rebound = http.get("/v1/models", headers={"Host": "evil.example:8000"})
        assert rebound.status_code == 403 and "not a loopback name" in rebound.json()["error"]["message"]
        assert http.get("/v1/models", headers={"Host": f"localhost:{aigc_server.port}"}).status_code == 200
    with httpx.Client(base_url=locked.base_url, timeout=30) as http:  # with a key, any name (the key decides)
        named = http.get("/v1/models", headers={"Host": "models.example", "Authorization": f"Bearer {KEY}"})
        assert named.status_code == 200
