"""``aigc generate``: render a prompt and send it through the router (local model or OpenAI-compatible API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from aigc_app.cli.inputs import collect_vars, config_option, input_options, prompt_registry, prompts_dir_option
from aigc_app.cli.output import console, err_console

__all__ = ["generate_cmd"]


@click.command("generate")
@click.argument("ref")
@input_options
@click.option("--model", "model_id", help="Model id (openai:gpt-4o-mini, hf:./folder); default: the config's.")
@config_option
@prompts_dir_option
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate (default: the prompt's).")
@click.option(
    "--temperature", type=click.FloatRange(0, 2), help="0 is greedy; higher samples more freely (default: prompt's)."
)
@click.option("--seed", type=int, help="Seed for sampling, for a reproducible answer at temperature > 0.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print tokens as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and its route as JSON.")
def generate_cmd(
    ref: str,
    pairs: tuple[str, ...],
    vars_file: Path | None,
    example: bool,
    model_id: str | None,
    config_path: Path | None,
    dirs: tuple[Path, ...],
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    stream: bool,
    as_json: bool,
) -> None:
    """Generate content from a versioned prompt with the configured model (see `aigc.yaml` / env variables)."""

    from aigc_app.settings import models_config
    from chains import Router
    from chains.chain import call_options

    prompt = prompt_registry(dirs).get(ref)
    values = collect_vars(prompt, pairs, vars_file, example)
    config = models_config(config_path)
    if model_id:
        config.router.default = model_id
    router = Router.from_config(config)
    options = call_options(prompt, router)
    if model_id:
        options["model"] = model_id  # the command line wins over the prompt's preferred model
    flags = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    options.update({k: v for k, v in flags.items() if v is not None})
    messages = prompt.to_langchain(**values)
    err_console().print(f"[dim]{prompt.ref} -> {options.get('model') or router._default()}[/]")
    if prompt.meta.output.format == "json":
        _generate_json(prompt, router, messages, options, as_json)
        return
    if stream and not as_json:
        route = None
        for chunk in router.stream(messages, **options):
            click.echo(chunk.content, nl=False)
            route = chunk.response_metadata.get("aigc_route", route)
        click.echo()
        err_console().print(f"[dim]answered by {route['backend']} after {route['attempts']} attempt(s)[/]")
        return
    answer = router.invoke(messages, **options)
    route = answer.response_metadata["aigc_route"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "prompt": prompt.ref,
                    "prompt_hash": prompt.hash,
                    "content": answer.content,
                    "route": route,
                    "usage": answer.usage_metadata,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    console().print(answer.content, markup=False)
    err_console().print(f"[dim]answered by {route['backend']} after {route['attempts']} attempt(s)[/]")


def _generate_json(prompt: Any, router: Any, messages: list[Any], options: dict[str, Any], as_json: bool) -> None:
    """A JSON prompt: decoded under its schema (local models) or the server's JSON mode, validated, printed."""
    from chains.structured import structured_runnable

    schema = prompt.meta.output.schema_ or {"type": ["object", "array"]}
    result = structured_runnable(router.bind(**options), schema, include_raw=True).invoke(messages)
    raw = result["raw"]
    if result["parsing_error"] is not None:
        from chains.errors import StructuredOutputError

        raise StructuredOutputError(
            f"{prompt.ref}: the answer did not validate against the prompt's output schema after one repair "
            f"attempt ({str(result['parsing_error']).splitlines()[0]}); answer began {raw.text[:160]!r}"
        )
    route = raw.response_metadata.get("aigc_route", {})
    value = result["parsed"]
    if as_json:
        document = {"prompt": prompt.ref, "prompt_hash": prompt.hash, "content": value, "route": route}
        click.echo(json.dumps({**document, "usage": raw.usage_metadata}, indent=2, ensure_ascii=False))
        return
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
    err_console().print(f"[dim]answered by {route.get('backend')} after {route.get('attempts')} attempt(s)[/]")
