"""``aigc run``: run a prompt reference or a named chain (``marketing.campaign``, ``education.quiz``, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from aigc_app.cli.inputs import _read_vars_file, collect_vars, config_option, prompt_registry, prompts_dir_option
from aigc_app.cli.output import err_console

__all__ = ["run_cmd"]


@click.command("run")
@click.argument("ref_or_chain", metavar="REF_OR_CHAIN")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable).")
@click.option(
    "--vars-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON file of input values; --var wins over it.",
)
@click.option("--example", is_flag=True, help="Prompt refs: fill inputs not given with the prompt's examples.")
@click.option("--model", "model_id", help="Model id (openai:gpt-4o-mini, hf:./folder); default: the config's.")
@click.option(
    "--step-model",
    "step_models",
    multiple=True,
    metavar="STEP=MODEL",
    help="Compositions: the model of one step, e.g. critique=openai:gpt-4o-mini (repeatable).",
)
@config_option
@prompts_dir_option
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens per model call (default: the prompt's).")
@click.option(
    "--temperature", type=click.FloatRange(0, 2), help="0 is greedy; higher samples more freely (default: prompt's)."
)
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print text answers as tokens arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (with the prompt ref and hash).")
def run_cmd(
    ref_or_chain: str,
    pairs: tuple[str, ...],
    vars_file: Path | None,
    example: bool,
    model_id: str | None,
    step_models: tuple[str, ...],
    config_path: Path | None,
    dirs: tuple[Path, ...],
    max_tokens: int | None,
    temperature: float | None,
    stream: bool,
    as_json: bool,
) -> None:
    """Run REF_OR_CHAIN: a prompt reference (marketing/ad_copy@^1) or a chain name (marketing.campaign).

    Text answers stream to the terminal; JSON and typed answers are validated (one repair attempt) and printed as
    JSON. Chains: marketing.campaign, education.pack, writing.pipeline and the task chains (marketing.ad_copy,
    education.quiz, writing.rewrite, ...).
    """
    from aigc_app.settings import models_config
    from chains import Router

    config = models_config(config_path)
    if model_id:
        config.router.default = model_id
    router = Router.from_config(config)
    options = {k: v for k, v in {"max_tokens": max_tokens, "temperature": temperature}.items() if v is not None}
    name = ref_or_chain.partition("@")[0]
    if "/" in name or "." not in name:
        _run_prompt(ref_or_chain, (pairs, vars_file, example), dirs, router, config, options, model_id, stream, as_json)
        return
    if example:
        hint = "fills a prompt's inputs; for a chain, give --var or --vars-file"
        raise click.BadParameter(hint, param_hint="--example")
    values = {**(_read_vars_file(vars_file) if vars_file else {}), **_pairs(pairs, "--var")}
    _run_chain(ref_or_chain, values, dirs, router, config, options, _pairs(step_models, "--step-model"), as_json)


def _pairs(pairs: tuple[str, ...], hint: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint=hint)
        values[name.strip()] = value
    return values


def _run_prompt(
    ref: str,
    given: tuple[tuple[str, ...], Path | None, bool],
    dirs: tuple[Path, ...],
    router: Any,
    config: Any,
    options: dict[str, Any],
    model_id: str | None,
    stream: bool,
    as_json: bool,
) -> None:
    from chains.chain import chain
    from chains.compose import CHAINS
    from prompts import PromptNotFound

    registry = prompt_registry(dirs)
    try:
        prompt = registry.get(ref)
    except PromptNotFound as exc:
        if exc.suggestions or "/" in ref:
            raise
        import difflib

        near = difflib.get_close_matches(ref, list(CHAINS), n=3, cutoff=0.5)
        raise PromptNotFound(f"no prompt or chain is named {ref!r}.", ref=ref, suggestions=near) from None
    values = collect_vars(prompt, *given)
    runnable = chain(prompt, router, route=model_id, config=config, **options)
    err_console().print(f"[dim]{prompt.ref} -> {model_id or router._default()}[/]")
    if prompt.meta.output.format != "json" and stream and not as_json:
        for piece in runnable.stream(values):
            click.echo(piece, nl=False)
        click.echo()
        return
    value = runnable.invoke(values)
    if as_json:
        value = {"prompt": prompt.ref, "prompt_hash": prompt.hash, "content": value}
    elif prompt.meta.output.format != "json":
        click.echo(value)
        return
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _run_chain(
    name: str,
    values: dict[str, Any],
    dirs: tuple[Path, ...],
    router: Any,
    config: Any,
    options: dict[str, Any],
    step_models: dict[str, str],
    as_json: bool,
) -> None:
    from chains.chain import TextOutput
    from chains.compose import COMPOSITIONS, get_chain

    factory = get_chain(name)
    kwargs: dict[str, Any] = {"config": config, "registry": prompt_registry(dirs), **options}
    if step_models:
        if name not in COMPOSITIONS:
            raise click.BadParameter(f"{name} is a single-step chain; use --model", param_hint="--step-model")
        kwargs["models"] = step_models
    err_console().print(f"[dim]{name} -> {router._default()}[/]")
    result = factory(router, **kwargs).invoke(values)
    if isinstance(result, TextOutput) and not as_json:
        click.echo(result.text)
        return
    click.echo(json.dumps(_jsonable(result), indent=2, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
