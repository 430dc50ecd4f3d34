"""Registry, suites and the run-never-crashes contract, on real built-in evaluators."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc_app.cli import run
from evaluators.base import Sample, Score
from evaluators.errors import EvaluatorError, InvalidArguments, UnknownEvaluator
from evaluators.registry import EvaluatorRegistry
from evaluators.suite import Suite, SuiteSpec, load_suite
from prompts import load_prompt

OFFLINE = [
    "adherence",
    "degeneration",
    "acceptability",
    "toxicity",
    "pii",
    "prompt_injection",
    "prompt_leakage",
    "marketing_claims",
    "learner_appropriate",
]


class Exploding:
    """An evaluator with a bug."""

    name = "exploding"
    version = "1"

    def score(self, sample: Sample) -> Score:
        raise RuntimeError("boom")


def social_sample(output: str | bytes) -> Sample:
    prompt = load_prompt("marketing/social_post@1.1.0")
    return Sample.from_prompt(prompt, {"platform": "x", "topic": "our new trail shoe"}, output)


def test_registry_knows_every_built_in_evaluator() -> None:
    names = EvaluatorRegistry().names
    for name in [
        *OFFLINE,
        "ifeval",
        "perplexity",
        "moderation",
        "semantic_similarity",
        "diversity",
        "geval_fluency",
        "judge_rubric",
        "judge_safety",
    ]:
        assert name in names
    with pytest.raises(UnknownEvaluator, match="registered: "):
        EvaluatorRegistry().create("fluency_magic")
    with pytest.raises(InvalidArguments, match="does not take"):
        EvaluatorRegistry().create("diversity", colour="red")


def test_a_missing_optional_dependency_names_the_extra() -> None:
    def needs_numpy() -> Score:
        raise ImportError("No module named 'numpy'", name="numpy")

    with pytest.raises(EvaluatorError, match=r"needs the package 'numpy'.*aigc\[eval\]"):
        EvaluatorRegistry(factories={"needs_numpy": needs_numpy}).create("needs_numpy")


def test_offline_suite_scores_a_prompt_output_with_its_expect_block() -> None:
    suite = load_suite("offline")
    good, bad = suite.score(
        [
            social_sample("New trail shoe: grips wet rock, drains fast, fits wide feet. Try a pair this weekend."),
            social_sample("GUARANTEED results!!! Call 555-0100-2233 or email jo@example.com. " * 20),
        ]
    )
    assert [s.name for s in good] == OFFLINE[:-1]  # learner_appropriate is for education prompts only
    assert all(s.error is None for s in good + bad)
    by_name = {s.name: s for s in bad}
    assert by_name["pii"].passed is False and by_name["marketing_claims"].passed is False
    assert by_name["adherence"].details  # the prompt's expect block was checked
    assert sum(s.passed is True for s in good) > sum(s.passed is True for s in bad)


def test_a_failing_evaluator_becomes_an_error_score_and_the_run_goes_on() -> None:
    registry = EvaluatorRegistry(factories={"exploding": Exploding})
    spec = SuiteSpec(name="t", evaluators=[{"evaluator": "exploding"}, {"evaluator": "toxicity", "threshold": 0.5}])
    (row,) = Suite(spec, registry).score([Sample(output="A calm and friendly note.")])
    assert row[0].error == "RuntimeError: boom at test_evaluators_suite.py:36"
    assert row[0].passed is False and row[0].value == 0.0
    assert row[1].error is None and row[1].passed is True


@pytest.mark.parametrize(
    "output", ["", "word " * 200_000, b"caf\xe9 \xff\xfe broken bytes"], ids=["empty", "1MB", "bytes"]
)
def test_bad_outputs_score_without_crashing(output: str | bytes) -> None:
    (row,) = load_suite("offline").score([social_sample(output)])
    assert len(row) == 8 and all(s.error is None for s in row)


def test_thresholds_per_task(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("name: t\nevaluators:\n  - {evaluator: toxicity, thresholds: {education: 0.99, default: 0.1}}\n")
    suite = load_suite(path)
    text = "That was a damn good lesson."
    school, office = suite.score([Sample(output=text, task="education"), Sample(output=text, task="writing")])
    assert school[0].threshold == 0.99 and office[0].threshold == 0.1
    with pytest.raises(UnknownEvaluator, match="built-in suites: education, judge, marketing, offline, writing"):
        load_suite("nope")
    path.write_text("name: t\nevaluators:\n  - {evaluatr: toxicity}\n")
    with pytest.raises(Exception, match="invalid suite definition"):
        load_suite(path)


def test_cli_score_prints_a_table(capsys) -> None:
    code = run(
        [
            "evaluators",
            "score",
            "marketing/social_post",
            "--var",
            "platform=x",
            "--var",
            "topic=shoes",
            "--output",
            "Grip that holds on wet rock. #trailrunning",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "adherence" in out and "toxicity" in out and "pass" in out


def test_cli_calibrate_says_clearly_when_data_is_missing(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path / "nowhere"))
    assert run(["evaluators", "calibrate", "--out", str(tmp_path / "c.md")]) == 1
    assert "no labelled data folder found" in capsys.readouterr().err
