"""The eval runner: suites (YAML or Python) expanded into a plan, run with asyncio, every case kept in the store.

from aigc_app.runner import RunOptions, load_eval_suite, run_suite
from aigc_app.settings import models_config
from aigc_app.store import ResultsStore

with ResultsStore() as store:
    results = run_suite(load_eval_suite("marketing"), config=models_config(), store=store,
                        options=RunOptions(concurrency=8))
print(results.info.status, sum(c.passed for c in results.cases), "/", len(results.cases))
"""

from aigc_app.runner.cases import Case, filter_cases, resolve_cases
from aigc_app.runner.errors import CostLimitExceeded, RunError, RunInterrupted, SuiteError
from aigc_app.runner.execute import AdaptiveLimit, RunOptions, arun_suite, resolve_options, run_suite
from aigc_app.runner.models import ModelChoice, best_available_model
from aigc_app.runner.plan import Plan, Slot, build_plan
from aigc_app.runner.progress import Reporter
from aigc_app.runner.spec import (
    BUILTIN_EVAL_SUITES,
    CaseEntry,
    EvalSuite,
    GenerationParams,
    builtin_suites,
    load_eval_suite,
)

__all__ = [
    "BUILTIN_EVAL_SUITES",
    "AdaptiveLimit",
    "Case",
    "CaseEntry",
    "CostLimitExceeded",
    "EvalSuite",
    "GenerationParams",
    "ModelChoice",
    "Plan",
    "Reporter",
    "RunError",
    "RunInterrupted",
    "RunOptions",
    "Slot",
    "SuiteError",
    "arun_suite",
    "best_available_model",
    "build_plan",
    "builtin_suites",
    "filter_cases",
    "load_eval_suite",
    "resolve_cases",
    "resolve_options",
    "run_suite",
]
