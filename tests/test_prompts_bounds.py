"""The render bounds hold: every reproduction of the sandbox probe is refused in time and memory, in process
(published versions) and in the isolated worker (drafts), and the worker's OS limits stop what slips through."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from prompts import PromptRegistry, PromptSecurityError, RenderBudget
from prompts.publishing import lock
from tests.conftest import version_file

R = "{% set r = 'x' * 30000 %}"
NS = "{% set ns = namespace(n=1000000, l=[]) %}"
# Each of these allocated 0.6-3.7 GB, or never finished, before this change.
PROBES = {
    "int squaring": NS + "{% for i in range(22) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
    "list concat loop": NS + "{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.l|length }}",
    "printf mapping width": "{{ '%(a)900000000s' % {'a': 'x'} }}",
    "format filter width": "{{ '%(a)900000000s'|format(a='x') }}",
    "printf precision": "{{ '%(a).900000000f' % {'a': 1.5} }}",
    "ljust product": "{{ 'x'.ljust(1000000 * 900) }}",
    "zfill product": "{{ '1'.zfill(1000000 * 900) }}",
    "center product": "{{ 'x'.center(1000000 * 900) }}",
    "expandtabs": "{{ ('\\t' * 100000).expandtabs(9000) }}",
    "replace": R + "{{ r|replace('x', r) }}",
    "list repeat printed": R + "{{ [r] * 100000 }}",
    "list repeat join": R + "{{ ([r] * 100000)|join }}",
    "list repeat string": R + "{{ ([r] * 100000)|string }}",
    "list repeat tojson": R + "{{ ([r] * 100000)|tojson }}",
    "fromkeys": R + "{{ {}.fromkeys(range(100000), r) }}",
    "fromkeys string": R + "{{ {}.fromkeys(range(100000), r)|string }}",
    "map center list": "{{ range(100000)|map('string')|map('center', 200000)|list }}",
    "indent": "{{ ('\\nx' * 3000)|indent(200000) }}",
    "loop of outputs": R + "{% for i in range(100000) %}{{ r }}{% endfor %}",
    "include in a loop": "{% for i in range(100000) %}{% include '_partials/big.jinja' %}{% endfor %}",
    "sum of lists": R + "{{ ([[r] * 1000] * 1000)|sum(start=[]) }}",
    "namespace printed": R + "{% set ns = namespace(l=[r] * 100000) %}{{ ns }}",
    "concat of list": R + "{{ 'a' ~ ([r] * 100000) }}",
    "str.format argument": R + "{{ '{}'.format([r] * 100000) }}",
    "join method": R + "{{ ''.join([r] * 100000) }}",
    # found by an independent probe after the first round of fixes
    "bytes ljust": "{{ 'a'.encode().ljust(1000000 * 1000)|length }}",
    "bytes repeat": "{{ ('a'.encode() * (1000000 * 1000))|length }}",
    "slice copies": "{% set big = [0] * 200000 %}{% set ns = namespace(acc=none) %}"
    "{% for i in range(400) %}{% set ns.acc = [ns.acc, big[:]] %}{% endfor %}done",
    "format repeated field": "{% set s = 'x' * 190000 %}{% set f = '{0}' * 5000 %}{{ f.format(s)|length }}",
    "printf repeated key": "{% set s = 'x' * 150000 %}{% set f = '%(a)s' * 3000 %}{{ (f % {'a': s})|length }}",
    "format filter repeated key": "{% set s = 'x' * 150000 %}{{ ('%(a)s' * 3000)|format(a=s)|length }}",
    "tojson indent": "{% set l = [[0] * 40] * 40 %}{{ l|tojson(indent='a' * 190000)|length }}",
    "sum quadratic": "{% set x = [[0]] * 33000 %}{{ x|sum(start=[])|length }}",
}
BIG_PARTIAL = "x" * 20000 + "\n"


def _library(tmp_path: Path, body: str, *, published: bool) -> PromptRegistry:
    root = tmp_path / "lib"
    (root / "_partials").mkdir(parents=True)
    (root / "_partials" / "big.jinja").write_text(BIG_PARTIAL)
    (root / "writing/probe").mkdir(parents=True)
    (root / "writing/probe/1.0.0.jinja").write_text(version_file("probe", inputs="inputs: {}\n", body=body))
    if published:
        lock(PromptRegistry([root], include_builtin=False))
    return PromptRegistry([root], include_builtin=False)


def _peak_mb(action: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_is_refused_in_process_before_it_allocates(tmp_path: Path, name: str) -> None:
    registry = _library(tmp_path, PROBES[name], published=True)
    prompt = registry.get("probe")
    assert prompt.published and not prompt.isolated
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(PromptSecurityError) as info:
            prompt.render()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10  # a hang guard, not a speed test: the budget is 2 s
    assert info.value.path and info.value.path.endswith(".jinja")
    assert peak < 256, f"{name}: {peak:.0f} MB traced before the refusal"


@pytest.mark.parametrize("name", ["int squaring", "printf mapping width", "list repeat join", "indent"])
def test_probe_is_refused_in_the_isolated_worker(tmp_path: Path, name: str) -> None:
    registry = _library(tmp_path, PROBES[name], published=False)
    prompt = registry.get("probe@1.0.0")
    assert prompt.isolated
    with pytest.raises(PromptSecurityError, match="blocked by the sandbox") as info:
        prompt.render()
    assert info.value.path.endswith("1.0.0.jinja")
    with pytest.raises(PromptSecurityError):  # the worker survives a refused render and answers again
        prompt.render()
    registry.close()


def test_constant_filter_chains_are_not_folded_at_load(tmp_path: Path) -> None:
    body = "{{ 'x'|center(200000)|replace(' ', '" + "y" * 3000 + "')|length }}"
    registry = _library(tmp_path, body, published=True)
    started = time.monotonic()
    peak = _peak_mb(lambda: registry.get("probe"))
    assert peak < 50 and time.monotonic() - started < 5  # 2.7 s and 600 MB before
    with pytest.raises(PromptSecurityError, match="filter 'replace'"):
        registry.get("probe").render()


def test_os_memory_limit_stops_what_the_meter_allows(tmp_path: Path) -> None:
    loose = RenderBudget(max_output_chars=10**10, max_work=10**12, max_memory_mb=64)
    root = _library(tmp_path, "{{ ('x' * (1000 * 1000 * 300))|length }}", published=False).libraries[0].root
    registry = PromptRegistry([root], include_builtin=False, budget=loose)
    with pytest.raises(PromptSecurityError, match=r"out of memory .*limited to 64 MB|over its memory limit"):
        registry.get("probe@1.0.0").render()
    registry.close()


def test_os_time_limit_stops_a_single_long_operation(tmp_path: Path) -> None:
    loose = RenderBudget(max_seconds=1.0, max_loop_items=10**10)
    root = _library(tmp_path, "{{ range(1000 * 1000 * 1000 * 10)|sum }}", published=False).libraries[0].root
    registry = PromptRegistry([root], include_builtin=False, budget=loose)
    started = time.monotonic()
    with pytest.raises(PromptSecurityError, match=r"time limit|stopped by the OS"):
        registry.get("probe@1.0.0").render()
    assert time.monotonic() - started < 15
    registry.close()
