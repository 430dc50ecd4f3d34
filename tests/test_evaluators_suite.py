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
        "slor",
        "fluency_long",
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


# --- the fluency gate ------------------------------------------------------------------------------------------------


def test_task_suites_gate_on_slor_and_the_offline_suite_runs_no_language_model() -> None:
    for name in ("writing", "marketing", "education"):
        entries = {e.evaluator: e for e in load_suite(name).spec.evaluators}
        assert not entries["slor"].advisory and entries["slor"].threshold is None, name  # its calibrated cut
        assert "acceptability" not in entries and not entries["degeneration"].advisory, name
    assert load_suite("writing").spec.evaluators[4].evaluator == "fluency_long"
    assert load_suite("writing").spec.evaluators[4].advisory
    offline = [e.evaluator for e in load_suite("offline").spec.evaluators]
    assert "slor" not in offline and "fluency_long" not in offline


def test_without_smollm2_a_task_suite_says_so_and_degeneration_still_gates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_MODELS_DIR", str(tmp_path / "empty-cache"))
    (row,) = load_suite("writing").score([Sample(output="After the storm, the river rose and closed two roads.")])
    by_name = {s.name: s for s in row}
    for name in ("slor", "fluency_long"):
        assert not by_name[name].applicable and by_name[name].passed is None and by_name[name].error is None
        assert "aigc models pull smollm2" in by_name[name].reason
    assert by_name["degeneration"].passed is True


# --- one source of truth for thresholds ------------------------------------------------------------------------------


def test_a_suite_entry_without_threshold_keeps_the_evaluators_calibrated_one() -> None:
    from evaluators.safety.toxicity import DEFAULT_THRESHOLD, ToxicityEvaluator

    texts = ["A calm and friendly note.", "You are a damn idiot.", "That was a damn good lesson, you fool."]
    own = ToxicityEvaluator().score_batch([Sample(output=t) for t in texts])
    for name in ("offline", "writing", "marketing"):
        entry = next(e for e in load_suite(name).spec.evaluators if e.evaluator == "toxicity")
        assert entry.threshold is None and not entry.thresholds, name  # no restated number in a built-in suite
    rows = load_suite("offline").score([Sample(output=t) for t in texts])
    suite = [next(s for s in row if s.name == "toxicity") for row in rows]
    assert [s.passed for s in suite] == [s.passed for s in own]
    assert all(s.threshold == pytest.approx(1 - DEFAULT_THRESHOLD) for s in suite)  # on the value scale


def test_a_deliberate_override_is_applied_on_the_value_scale() -> None:
    spec = SuiteSpec(name="t", evaluators=[{"evaluator": "toxicity", "threshold": 0.99}])
    (row,) = Suite(spec).score([Sample(output="That was a damn good lesson.")])
    assert row[0].threshold == 0.99 and row[0].passed is (row[0].value >= 0.99)


# --- not applicable ---------------------------------------------------------------------------------------------------


def test_diversity_of_a_single_post_is_not_applicable_neither_pass_nor_fail() -> None:
    (row,) = load_suite("marketing").score([social_sample("Loving our new trail shoe. #running #trail")])
    by_name = {s.name: s for s in row}
    diversity = by_name["diversity"]
    assert diversity.applicable is False and diversity.passed is None and diversity.threshold is None
    assert "not applicable" in diversity.reason and diversity.to_dict()["applicable"] is False
    assert by_name["degeneration"].passed is True  # a post ending in hashtags is not truncated
    variants = Sample(output='["Grip that holds on wet rock.", "Drains fast, dries faster, fits wide feet."]')
    (scored,) = load_suite("marketing").score([variants])
    multi = next(s for s in scored if s.name == "diversity")
    assert multi.applicable and multi.passed is not None and multi.threshold == 0.5
    with pytest.raises(ValueError, match="neither pass nor fail"):
        Score("x", 0.0, passed=True, applicable=False)


def test_cli_shows_not_applicable(capsys) -> None:
    args = ["evaluators", "score", "marketing/social_post", "--var", "platform=x", "--var", "topic=shoes"]
    code = run([*args, "--output", "Loving our new trail shoe. #running #trail", "--suite", "marketing"])
    lines = capsys.readouterr().out.splitlines()
    line = next(x for x in lines if "diversity" in x)
    assert "n/a" in line and "fail" not in line
    # the exit status follows the gating verdicts only: a not-applicable check never fails the command
    assert code == (1 if any("│ fail " in x for x in lines) else 0)


# --- a missing optional package -----------------------------------------------------------------------------------


def test_a_missing_optional_package_becomes_an_error_score_and_the_suite_runs(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "numpy", None)  # `import numpy` now raises ImportError, as in a core install
    for name in [m for m in sys.modules if m.startswith("evaluators.fluency.acceptability")]:
        monkeypatch.delitem(sys.modules, name)
    spec = SuiteSpec(
        name="t",
        evaluators=[
            {"evaluator": "acceptability", "advisory": True},
            {"evaluator": "acceptability"},
            {"evaluator": "degeneration"},
        ],
    )
    (row,) = Suite(spec).score([Sample(output="A calm and friendly note about our new shoe.")])
    advisory, gating, degeneration = row
    for score in (advisory, gating):
        assert score.error and "needs the package 'numpy'" in score.error and "aigc[eval]" in score.error
    assert advisory.passed is None and gating.passed is False
    assert degeneration.error is None and degeneration.passed is True
    (offline,) = load_suite("offline").score([Sample(output="A calm and friendly note about our new shoe.")])
    assert next(s for s in offline if s.name == "acceptability").error


def test_an_import_error_while_scoring_names_the_extra() -> None:
    class NeedsPackage:
        name = "needs_package"
        version = "1"

        def score(self, sample: Sample) -> Score:
            raise ModuleNotFoundError("No module named 'profanity_check'", name="profanity_check")

    spec = SuiteSpec(name="t", evaluators=[{"evaluator": "needs_package"}])
    (row,) = Suite(spec, EvaluatorRegistry(factories={"needs_package": NeedsPackage})).score([Sample(output="Hi.")])
    assert "needs the package 'profanity_check'" in row[0].error and "aigc[eval]" in row[0].error


# --- native thread pools ----------------------------------------------------------------------------------------------


class RecordsThreads:
    """Records the BLAS/OpenMP pool sizes threadpoolctl sees while it scores."""

    name = "records_threads"
    version = "1"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def score(self, sample: Sample) -> Score:
        from threadpoolctl import threadpool_info

        self.seen += [pool["num_threads"] for pool in threadpool_info()]
        return Score(self.name, 1.0, True)


def test_the_suite_caps_native_thread_pools_while_scoring() -> None:
    import numpy  # noqa: F401  (loads the BLAS library whose pool is capped)
    from threadpoolctl import threadpool_info

    recorder = RecordsThreads()
    suite = Suite(
        SuiteSpec(name="t", evaluators=[{"evaluator": "r"}]), EvaluatorRegistry(factories={"r": lambda: recorder})
    )
    before = [pool["num_threads"] for pool in threadpool_info()]
    suite.score([Sample(output="x")])
    assert recorder.seen and set(recorder.seen) == {1}  # the default: one thread per pool
    recorder.seen.clear()
    suite.score([Sample(output="x")], threads=2, workers=2)
    assert recorder.seen and max(recorder.seen) <= 2
    assert [pool["num_threads"] for pool in threadpool_info()] == before  # restored afterwards
    recorder.seen.clear()
    suite.score([Sample(output="x")], threads=None)
    assert recorder.seen == before
