"""The aigc pytest plugin, run the way users run it: a real pytest subprocess over a test file that uses it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PROMPT = """\
---
name: greeting
version: 1.0.0
task: writing
description: A greeting.
inputs:
  who: {type: string, example: Ada}
changelog: First version.
---
{% message "system" %}
You write greetings.
{% endmessage %}
{% message "user" %}
Greet {{ who }} warmly.
{% endmessage %}
"""

SNAPSHOT_TEST = """\
def test_greeting_prompt(aigc_snapshot):
    aigc_snapshot("writing/greeting@1.0.0", who="Ada")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: a prompt library folder and a pytest ini that points the plugin at it."""
    library = pytester.path / "library" / "writing" / "greeting"
    library.mkdir(parents=True)
    (library / "1.0.0.jinja").write_text(PROMPT)
    pytester.makeini("[pytest]\naigc_prompts_dirs = library\n")
    return pytester


def _edit_prompt(root: Path, old: str, new: str) -> None:
    path = root / "library" / "writing" / "greeting" / "1.0.0.jinja"
    path.write_text(path.read_text().replace(old, new))


def test_a_missing_snapshot_fails_and_says_how_to_write_it(project: pytest.Pytester) -> None:
    project.makepyfile(test_prompts=SNAPSHOT_TEST)
    result = project.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no snapshot of writing/greeting@1.0.0*--aigc-update-snapshots*"])


def test_update_writes_the_snapshot_then_it_passes(project: pytest.Pytester) -> None:
    project.makepyfile(test_prompts=SNAPSHOT_TEST)
    project.runpytest_subprocess("--aigc-update-snapshots").assert_outcomes(passed=1)
    stored = project.path / "__aigc_snapshots__" / "test_prompts" / "writing_greeting@1.0.0.txt"
    text = stored.read_text()
    assert "--- user\nGreet Ada warmly." in text and text.startswith("# writing/greeting@1.0.0 ")
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_an_unknown_prompt_fails_with_the_registry_message_not_a_traceback(project: pytest.Pytester) -> None:
    project.makepyfile(test_prompts='def test_x(aigc_snapshot):\n    aigc_snapshot("writing/greting@1.0.0")\n')
    result = project.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*PromptNotFound*writing/greeting*"])
    assert "Traceback" not in result.stdout.str()


def test_a_changed_template_fails_with_a_diff(project: pytest.Pytester) -> None:
    project.makepyfile(test_prompts=SNAPSHOT_TEST)
    project.runpytest_subprocess("--aigc-update-snapshots").assert_outcomes(passed=1)
    _edit_prompt(project.path, "warmly", "briefly")
    result = project.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    expected = ["*renders differently from its snapshot*", "*-Greet Ada warmly.*", "*+Greet Ada briefly.*"]
    result.stdout.fnmatch_lines(expected)
    assert "Traceback" not in result.stdout.str()


def test_score_assertions_pass_clean_text_and_explain_failures(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_scores=textwrap.dedent(
            """
            def test_clean(aigc_score):
                check = aigc_score("Hello Ada, it is lovely to see you again. Welcome back to the team.",
                                   prompt="writing/greeting@1.0.0", inputs={"who": "Ada"}, suite="offline")
                check.assert_passed()
                assert check["degeneration"].passed

            def test_degenerate(aigc_score):
                aigc_score("hello hello hello hello hello hello hello hello hello hello hello hello hello hello",
                           prompt="writing/greeting@1.0.0", inputs={"who": "Ada"}).assert_passed()

            def test_missing_input(aigc_score):
                aigc_score("Hello there, friend.", prompt="writing/greeting@1.0.0")
            """
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*output failed its checks:*", "*degeneration*"])
    result.stdout.fnmatch_lines(["*MissingVariables*who*"])


SUITE = """\
name: greetings
prompts: [writing/greeting@1.0.0]
models: [openai:gpt-test]
evaluators: [{evaluator: degeneration}]
cases:
  - {id: ada, vars: {who: Ada}}
  - {id: grace, vars: {who: Grace}}
"""


def test_a_suite_runs_inside_pytest_and_failures_name_the_cases(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chains.testing import Answer, OpenAIServer

    (project.path / "greetings.yaml").write_text(SUITE)
    project.makepyfile(
        test_suite=textwrap.dedent(
            """
            import pytest

            @pytest.mark.aigc_suite("greetings.yaml", min_pass_rate=1.0)
            def test_greetings(aigc_run):
                assert len(aigc_run.results.cases) == 2
                aigc_run.assert_pass_rate()
            """
        )
    )
    # answers chosen by the request, not by arrival order: the two cases run concurrently
    answers = {
        "Ada": "Hello Ada, welcome back. It is good to have you with us again this spring.",
        "Grace": "Hello Grace, welcome back. We are so glad you could join the team today.",
    }

    def respond(request: dict) -> Answer:
        text = request["messages"][-1]["content"]
        who = next(name for name in answers if name in text)
        return Answer(content=" ".join(["welcome"] * 20) if who in degenerate else answers[who])

    degenerate: set[str] = set()
    with OpenAIServer(responder=respond) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        project.runpytest_subprocess().assert_outcomes(passed=1)
        degenerate.add("Grace")
        result = project.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*suite greetings*pass rate 50% is under 100%*", "*grace*", "*degeneration*"])
