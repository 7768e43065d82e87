"""``rollout report KEY [--format md|html] [--out FILE]``: the rollout report for a review.

Markdown (``report_md``) for pasting into an incident review; HTML (``report_html``) as one
self-contained file: inline styles, charts drawn as inline SVG, nothing fetched from anywhere.
``--json`` prints the API's JSON (``GET /api/v1/flags/{key}/report``).
"""

from __future__ import annotations

import click

from rollout.cli import report_html, report_md
from rollout.cli.context import CliState, json_option, key_argument, pass_state
from rollout.cli.files import write_atomically


@click.command("report")
@key_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html"]),
    default="md",
    show_default=True,
    help="Markdown for a review, or one self-contained HTML file with charts.",
)
@click.option(
    "--out", metavar="FILE", type=click.Path(dir_okay=False), help="Write here, not to stdout."
)
@json_option
@pass_state
def report(state: CliState, key: str, fmt: str, out: str | None) -> None:
    """The rollout report of KEY: plan, stages, loads, trends, every Go/No-Go, timeline."""
    services = state.services
    if state.json:
        state.emit_json(services.reports.report(key))
        return
    body = services.reports.report(key, with_history=fmt == "html")
    text = report_html.render(body) if fmt == "html" else report_md.markdown(body)
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomically(out, text)
    click.echo(f"wrote the {fmt} report of {key} to {out}")
