"""``aigc prompts``: list, show, render, diff, bump, lock, check and label the versioned prompt library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aigc_app.cli.inputs import collect_vars, input_options, library_dirs, prompts_dir_option
from aigc_app.cli.output import console, err_console, print_error, print_warning

if TYPE_CHECKING:
    from rich.table import Table

    from prompts import Prompt, PromptRegistry
    from prompts.schema import InputSpec, PromptMeta

__all__ = ["prompts_group"]


@click.group("prompts")
@prompts_dir_option
@click.option("--no-builtin", is_flag=True, help="Leave out the library that ships with aigc.")
@click.pass_context
def prompts_group(ctx: click.Context, dirs: tuple[Path, ...], no_builtin: bool) -> None:
    """Versioned Jinja prompt templates: browse, render, publish and check them."""
    ctx.obj = {"dirs": library_dirs(dirs), "builtin": not no_builtin}


def _registry(ctx: click.Context) -> PromptRegistry:
    from prompts import PromptRegistry

    return PromptRegistry(ctx.obj["dirs"], include_builtin=ctx.obj["builtin"])


@prompts_group.command("list")
@click.option("--task", type=click.Choice(["writing", "marketing", "education", "other"]), help="Only this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_cmd(ctx: click.Context, task: str | None, as_json: bool) -> None:
    """List prompts with their latest version, drafts and labels."""
    from prompts.errors import PromptError
    from prompts.files import read_source
    from prompts.frontmatter import parse_prompt_file

    rows, broken = [], []
    for entry in _registry(ctx):
        if task and entry.task != task:
            continue
        newest = max(entry.versions)
        try:
            meta = parse_prompt_file(read_source(entry.versions[newest]), str(entry.versions[newest])).meta
        except PromptError as exc:
            broken.append(str(exc))
            continue
        rows.append(
            {
                "id": entry.id,
                "latest": str(entry.published[-1]) if entry.published else None,
                "drafts": [str(v) for v in entry.drafts],
                "labels": entry.labels,
                "output": meta.output.format,
                "description": meta.description,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        console().print(_list_table(rows), soft_wrap=False)
    for problem in broken:
        print_error(problem)
    if broken:
        raise SystemExit(1)


def _list_table(rows: list[dict[str, Any]]) -> Table:
    """One row per prompt, its description wrapped under the id so the table reads well at 80 columns."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(rows)} prompts", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("prompt", ratio=1)
    table.add_column("latest", no_wrap=True)
    table.add_column("drafts")
    table.add_column("labels", no_wrap=True)
    table.add_column("output", no_wrap=True)
    for row in rows:
        table.add_row(
            f"[bold]{escape(row['id'])}[/]\n[dim]{escape(row['description'])}[/]",
            row["latest"] or "[dim]-[/]",
            ", ".join(row["drafts"]),
            "\n".join(f"{k}={v}" for k, v in row["labels"].items()),
            row["output"],
            end_section=True,
        )
    return table


@prompts_group.command("show")
@click.argument("ref")
@click.pass_context
def show_cmd(ctx: click.Context, ref: str) -> None:
    """Show one prompt version: metadata, inputs, expectations and the template source."""
    from rich.markup import escape
    from rich.syntax import Syntax

    prompt = _registry(ctx).get(ref)
    meta = prompt.meta
    out = console()
    state = "[green]published[/]" if prompt.published else "[yellow]draft[/]"
    # soft_wrap=False: rich wraps at word boundaries to the terminal's width instead of leaving it to the terminal.
    out.print(f"[bold]{prompt.ref}[/]  {state}  sha256:{prompt.hash[:16]}", soft_wrap=False)
    out.print(f"[dim]file:[/] {escape(str(prompt.path))}", soft_wrap=False)
    out.print(f"{escape(meta.description)}\n[dim]changelog:[/] {escape(meta.changelog)}", soft_wrap=False)
    out.print(_inputs_table(meta), soft_wrap=False)
    model = meta.model.model_dump(exclude_none=True)
    out.print(
        f"[dim]model defaults:[/] {escape(str(model or 'none'))}   [dim]output:[/] {meta.output.format}",
        soft_wrap=False,
    )
    for item in meta.expect:
        out.print(f"[dim]expect:[/] {escape(item.check)} {escape(str(item.kwargs or ''))}", soft_wrap=False)
    if prompt.partials:
        out.print(f"[dim]partials:[/] {', '.join(sorted(prompt.partials))}", soft_wrap=False)
    # Long source lines wrap at word boundaries under their line number; nothing is cut.
    source = Syntax(prompt.source.rstrip("\n"), "django", theme="ansi_dark", line_numbers=True, word_wrap=True)
    out.print(source, soft_wrap=False)


def _inputs_table(meta: PromptMeta) -> Table:
    """The declared inputs; constraints go under the description so the table reads well at 80 columns."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="inputs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("input", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("default", max_width=20)
    table.add_column("description", ratio=1)
    for name, spec in meta.inputs.items():
        default = "[dim]required[/]" if spec.is_required else escape("" if spec.default is None else repr(spec.default))
        table.add_row(
            f"[bold]{name}[/]",
            spec.type + (f"[{spec.items}]" if spec.items else ""),
            default,
            "\n".join([escape(spec.description), *(f"[dim]{escape(n)}[/]" for n in _constraints(spec))]).strip(),
        )
    return table


def _constraints(spec: InputSpec) -> list[str]:
    notes = []
    if spec.enum:
        notes.append("one of: " + ", ".join(str(v) for v in spec.enum))
    if spec.max_length:
        notes.append(f"at most {spec.max_length} {'items' if spec.type == 'list' else 'characters'}")
    return notes


@prompts_group.command("render")
@click.argument("ref")
@input_options
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON (OpenAI chat format).")
@click.pass_context
def render_cmd(
    ctx: click.Context, ref: str, pairs: tuple[str, ...], vars_file: Path | None, example: bool, as_json: bool
) -> None:
    """Render a prompt to chat messages with validated inputs."""
    prompt = _registry(ctx).get(ref)
    values = collect_vars(prompt, pairs, vars_file, example)
    messages = prompt.render(**values)
    if as_json:
        click.echo(json.dumps([m.to_dict() for m in messages], indent=2, ensure_ascii=False))
        return
    from rich.markup import escape

    out = console()
    out.print(f"[dim]{prompt.ref}  sha256:{prompt.hash[:16]}[/]")
    for message in messages:
        out.rule(f"[bold]{message.role}[/]", align="left")
        out.print(escape(message.content))


@prompts_group.command("diff")
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
@click.pass_context
def diff_cmd(ctx: click.Context, ref_a: str, ref_b: str, color: str) -> None:
    """Unified diff of two prompt versions, partials included."""
    import difflib

    registry = _registry(ctx)
    a, b = registry.get(ref_a), registry.get(ref_b)
    lines = list(difflib.unified_diff(_resolved_lines(a), _resolved_lines(b), fromfile=a.ref, tofile=b.ref))
    if not lines:
        err_console().print(f"{a.ref} and {b.ref} have the same content")
        return
    use_color = color == "always" or (color == "auto" and click.get_text_stream("stdout").isatty())
    colors = {"+": "green", "-": "red", "@": "cyan"}
    for line in lines:
        style = colors.get(line[:1]) if use_color and not line.startswith(("+++", "---")) else None
        click.echo(
            click.style(line.rstrip("\n"), fg=style, bold=(line.startswith(("+++", "---")) and use_color) or None),
            color=use_color,
        )


def _resolved_lines(prompt: Prompt) -> list[str]:
    lines = prompt.source.splitlines(keepends=True)
    for name in sorted(prompt.partials):
        lines += ["\n", f"{{# partial {name} #}}\n", *prompt.partials[name].splitlines(keepends=True)]
    return [line if line.endswith("\n") else line + "\n" for line in lines]


@prompts_group.command("bump")
@click.argument("name")
@click.option("--major", "part", flag_value="major", help="Breaking change: inputs or output format changed.")
@click.option("--minor", "part", flag_value="minor", help="Improvement that keeps inputs and output compatible.")
@click.option("--patch", "part", flag_value="patch", help="Wording fix.")
@click.option("-m", "--message", required=True, help="One-line changelog: what changed and why.")
@click.pass_context
def bump_cmd(ctx: click.Context, name: str, part: str | None, message: str) -> None:
    """Copy the newest version of NAME to the next version as a draft to edit."""
    from prompts.publishing import bump

    if part is None:
        raise click.UsageError("say which part to bump: --major, --minor or --patch")
    path = bump(_registry(ctx), name, part, message)
    console().print(f"created draft [bold]{path}[/]; edit it, then publish with `aigc prompts lock`")


@prompts_group.command("lock")
@click.pass_context
def lock_cmd(ctx: click.Context) -> None:
    """Publish every draft: record its content hash in the library's prompts.lock."""
    from prompts.publishing import lock

    changes = lock(_registry(ctx))
    if not changes:
        console().print("lock is up to date: no drafts to publish")
    for change in changes:
        mark = "[green]published[/]" if change.action == "published" else "[red]removed[/]"
        console().print(f"{mark} {change.ref}  sha256:{change.hash[:16]}")


@prompts_group.command("check")
@click.option("--strict", is_flag=True, help="Fail on warnings too (drafts, unused inputs).")
@click.pass_context
def check_cmd(ctx: click.Context, strict: bool) -> None:
    """Verify the library: files load, published content is unchanged, lock and labels are consistent."""
    from prompts.publishing import check

    registry = _registry(ctx)
    problems = check(registry)
    errors = [p for p in problems if p.level == "error" or strict]
    for problem in problems:
        (print_error if problem in errors else print_warning)(str(problem).split(": ", 1)[1])
    versions = sum(len(e.versions) for e in registry)
    warnings = len(problems) - len(errors)
    summary = f"{len(registry)} prompts, {versions} versions: {len(errors)} error(s), {warnings} warning(s)"
    if errors:
        err_console().print(f"[bold red]check failed[/]: {summary}")
        raise SystemExit(1)
    console().print(f"[green]check passed[/]: {summary}")


@prompts_group.group("label")
def label_group() -> None:
    """Labels such as production point at one published version (labels.yaml)."""


@label_group.command("set")
@click.argument("ref", metavar="NAME@VERSION")
@click.argument("label")
@click.pass_context
def label_set_cmd(ctx: click.Context, ref: str, label: str) -> None:
    """Point LABEL of a prompt at an exact published version."""
    from prompts.publishing import set_label

    new, old = set_label(_registry(ctx), ref, label)
    name = ref.partition("@")[0]
    console().print(f"{name}@{label}: {old or '(new)'} -> [bold]{new}[/]")


@label_group.command("list")
@click.pass_context
def label_list_cmd(ctx: click.Context) -> None:
    """Show every label."""
    from rich.table import Table

    table = Table("prompt", "label", "version")
    for entry in _registry(ctx):
        for label, version in sorted(entry.labels.items()):
            table.add_row(entry.id, label, version)
    console().print(table)
