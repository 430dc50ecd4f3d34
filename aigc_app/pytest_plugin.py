"""The aigc pytest plugin: prompt snapshots, scoring assertions and eval suites inside pytest.

Installed with aigc (a ``pytest11`` entry point), so every pytest session has these fixtures:

    def test_ad_copy_prompt_is_unchanged(aigc_snapshot):
        aigc_snapshot("marketing/ad_copy@1.1.0", product_name="Aurora", audience="trail runners")

    def test_reply_is_on_brief(aigc_score):
        aigc_score("Aurora keeps your feet dry ...", prompt="marketing/ad_copy", suite="offline").assert_passed()

    @pytest.mark.aigc_suite("marketing", min_pass_rate=0.8)
    def test_marketing_suite(aigc_run):
        aigc_run.assert_pass_rate()

Options: ``--aigc-update-snapshots`` rewrites the snapshots that differ; ``--aigc-model ID`` runs suites on that
model; ``--aigc-store PATH`` keeps suite results in that store (default: a temporary one per session).
Importing this module is cheap: the runner, evaluators and models load when a fixture is first used.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aigc_app.results import RunResults
    from evaluators.base import Score
    from prompts import PromptRegistry

__all__ = ["ScoreCheck", "SuiteCheck", "format_failures"]

SNAPSHOT_DIR = "__aigc_snapshots__"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aigc", "aigc prompts and evaluations")
    group.addoption(
        "--aigc-update-snapshots", action="store_true", help="Rewrite aigc prompt snapshots that differ or are new."
    )
    group.addoption("--aigc-model", action="append", default=[], help="Model id for aigc suites (repeatable).")
    group.addoption("--aigc-store", default=None, help="Results store for aigc suites (default: a temporary one).")
    parser.addini("aigc_prompts_dirs", "Extra prompt library folders for the aigc fixtures.", type="paths", default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "aigc_suite(suite, *, model=None, min_pass_rate=1.0, **options): run an aigc eval suite for the aigc_run "
        "fixture",
    )


# ------------------------------------------------------------------------------------------------ snapshots


@contextmanager
def _readable_errors() -> Iterator[None]:
    """An aigc error (unknown prompt, missing variable, bad suite) fails the test with its message alone."""
    from prompts.errors import AigcError

    try:
        yield
    except AigcError as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", text).strip("_")


def render_snapshot(prompt: Any, values: Mapping[str, Any]) -> str:
    """The text a prompt snapshot keeps: ref, content hash and every rendered message."""
    messages = [m.to_dict() for m in prompt.render(**values)]
    lines = [f"# {prompt.ref} {prompt.hash}", f"# inputs: {json.dumps(dict(values), sort_keys=True, default=str)}"]
    for message in messages:
        lines += [f"--- {message['role']}", message["content"].rstrip("\n")]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def aigc_prompts(pytestconfig: pytest.Config) -> PromptRegistry:
    """The prompt registry: the built-in library plus the ``aigc_prompts_dirs`` ini folders."""
    from prompts import PromptRegistry

    dirs = [Path(p) for p in pytestconfig.getini("aigc_prompts_dirs")]
    return PromptRegistry(dirs) if dirs else PromptRegistry()


@pytest.fixture
def aigc_snapshot(request: pytest.FixtureRequest, aigc_prompts: PromptRegistry) -> Callable[..., str]:
    """``aigc_snapshot(ref, name=None, **inputs)``: render the prompt and compare it with its stored snapshot
    (``__aigc_snapshots__/<test module>/<name or ref>.txt`` beside the test). A difference fails with a diff."""
    update = request.config.getoption("--aigc-update-snapshots")
    folder = Path(request.node.path).parent / SNAPSHOT_DIR / Path(request.node.path).stem

    def check(ref: str, name: str | None = None, **inputs: Any) -> str:
        with _readable_errors():
            prompt = aigc_prompts.get(ref)
            text = render_snapshot(prompt, inputs)
        path = folder / f"{_slug(name or prompt.ref)}.txt"
        stored = path.read_text(encoding="utf-8") if path.is_file() else None
        if stored == text:
            return text
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return text
        if stored is None:
            pytest.fail(f"no snapshot of {prompt.ref} at {path}: run pytest --aigc-update-snapshots to write it")
        diff = "".join(
            difflib.unified_diff(
                stored.splitlines(keepends=True), text.splitlines(keepends=True), str(path), "rendered now"
            )
        )
        pytest.fail(
            f"{prompt.ref} renders differently from its snapshot {path}:\n{diff}\n"
            f"If the change is intended, run pytest --aigc-update-snapshots and commit the snapshot.",
            pytrace=False,
        )
        return text

    return check


# ------------------------------------------------------------------------------------------------ scoring


def format_failures(scores: Sequence[Score]) -> str:
    """The scores that failed or errored, one line each: evaluator, value against threshold, reason."""
    lines = []
    for s in scores:
        if s.error is not None or s.passed is False:
            bar = f" < {s.threshold:.2f}" if s.threshold is not None else ""
            why = s.error or s.reason
            lines.append(f"  {s.name:<22} {s.value:.2f}{bar}  {why}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ScoreCheck:
    """The scores of one output, with assertions that explain themselves."""

    output: str
    scores: Sequence[Score]

    def __getitem__(self, name: str) -> Score:
        found = next((s for s in self.scores if s.name == name), None)
        if found is None:
            raise KeyError(f"no score named {name!r}; scored: {', '.join(s.name for s in self.scores)}")
        return found

    @property
    def passed(self) -> bool:
        """No gating score failed or errored (advisory and not-applicable scores never fail)."""
        return all(s.passed is not False and s.error is None for s in self.scores)

    def assert_passed(self) -> None:
        """Fail the test with each failing evaluator, its value, threshold and reason."""
        if not self.passed:
            head = self.output if len(self.output) <= 160 else self.output[:157] + "..."
            pytest.fail(f"output failed its checks:\n{format_failures(self.scores)}\noutput: {head!r}", pytrace=False)


@pytest.fixture(scope="session")
def _aigc_suites() -> dict[str, Any]:
    return {}


@pytest.fixture
def aigc_score(aigc_prompts: PromptRegistry, _aigc_suites: dict[str, Any]) -> Callable[..., ScoreCheck]:
    """``aigc_score(output, *, prompt=None, inputs=None, suite="offline", **sample)``: score one output with an
    evaluator suite (built-in name or YAML path); ``prompt`` is a ref whose task and expectations apply, rendered
    with ``inputs`` (validated: a missing required input fails the test naming it; defaults fill the rest)."""
    from evaluators.base import Sample
    from evaluators.suite import load_suite

    def score(
        output: str,
        *,
        prompt: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        suite: str = "offline",
        **sample: Any,
    ) -> ScoreCheck:
        with _readable_errors():
            if suite not in _aigc_suites:
                _aigc_suites[suite] = load_suite(suite)
            if prompt is not None:
                item = Sample.from_prompt(aigc_prompts.get(prompt), dict(inputs or {}), output, **sample)
            else:
                item = Sample(output=output, inputs=dict(inputs or {}), **sample)
            return ScoreCheck(output, _aigc_suites[suite].score([item])[0])

    return score


# ------------------------------------------------------------------------------------------------ suites


@dataclass(frozen=True)
class SuiteCheck:
    """A finished eval run inside a test, with assertions that list the failing cases."""

    results: RunResults
    min_pass_rate: float = 1.0

    @property
    def pass_rate(self) -> float:
        """Share of generations that passed every gating check."""
        cases = self.results.cases
        return sum(c.passed for c in cases) / len(cases) if cases else 0.0

    def failures(self, limit: int = 20) -> str:
        """The failed cases, one line each: case, variant, failing evaluators and the first reason."""
        lines = []
        for case in [c for c in self.results.cases if not c.passed][:limit]:
            failed = [s for s in case.scores if s.gating and not s.passed and s.rescore == 0]
            why = case.error or "; ".join(f"{s.evaluator} {s.value:.2f}: {s.reason}" for s in failed[:2])
            lines.append(f"  {case.case_id:<24} {case.variant}\n      {why}")
        return "\n".join(lines)

    def assert_pass_rate(self, minimum: float | None = None) -> None:
        """Fail the test when the pass rate is under ``minimum`` (default: the marker's ``min_pass_rate``)."""
        bar = self.min_pass_rate if minimum is None else minimum
        if self.pass_rate < bar:
            info = self.results.info
            pytest.fail(
                f"suite {info.suite} (run {info.run_id}): pass rate {self.pass_rate:.0%} is under {bar:.0%}\n"
                f"{self.failures()}\nreport: aigc report {info.run_id} --format html -o report.html",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def aigc_store_path(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the plugin keeps suite results: ``--aigc-store`` or a temporary store for this session."""
    given = pytestconfig.getoption("--aigc-store")
    return Path(given) if given else tmp_path_factory.mktemp("aigc-store") / "results.db"


@pytest.fixture
def aigc_eval(pytestconfig: pytest.Config, aigc_store_path: Path) -> Callable[..., SuiteCheck]:
    """``aigc_eval(suite, *, model=None, min_pass_rate=1.0, **options)``: run an eval suite (built-in name, YAML
    path or EvalSuite) and return a :class:`SuiteCheck`. ``options`` are RunOptions fields."""

    def run(suite: Any, *, model: str | Sequence[str] | None = None, min_pass_rate: float = 1.0, **options: Any):
        from aigc_app.runner import RunOptions, load_eval_suite, run_suite
        from aigc_app.settings import models_config
        from aigc_app.store import ResultsStore

        models = [model] if isinstance(model, str) else list(model or pytestconfig.getoption("--aigc-model") or [])
        if models:
            options["models"] = models
        options.setdefault("quiet", True)
        options.setdefault("prompts_dirs", [Path(p) for p in pytestconfig.getini("aigc_prompts_dirs")])
        with _readable_errors():
            spec = load_eval_suite(suite) if isinstance(suite, str | Path) else suite
            with ResultsStore(aigc_store_path) as store:
                results = run_suite(spec, config=models_config(), store=store, options=RunOptions(**options))
        return SuiteCheck(results, min_pass_rate)

    return run


@pytest.fixture
def aigc_run(request: pytest.FixtureRequest, aigc_eval: Callable[..., SuiteCheck]) -> SuiteCheck:
    """The run of the suite named by the test's ``@pytest.mark.aigc_suite(...)`` marker."""
    marker = request.node.get_closest_marker("aigc_suite")
    if marker is None or not marker.args:
        raise pytest.UsageError(f"{request.node.nodeid}: aigc_run needs @pytest.mark.aigc_suite('SUITE', ...)")
    return aigc_eval(marker.args[0], **marker.kwargs)
