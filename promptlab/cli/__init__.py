"""The `promptlab` command line. Each command family is a module of its own, loaded lazily."""

from __future__ import annotations

import click

from promptlab import __version__
from promptlab.cli._common import project_options
from promptlab.cli._lazy import LazyGroup

# Command name -> "module:attribute". Families add their commands here.
COMMANDS: dict[str, str] = {
    "prompts": "promptlab.cli.prompts:prompts_list",
    "render": "promptlab.cli.prompts:prompts_render",
    "new": "promptlab.cli.prompts:prompts_new",
    "promote": "promptlab.cli.prompts:prompts_promote",
    "history": "promptlab.cli.history:prompts_history",
    "diff": "promptlab.cli.history:prompts_diff",
    "check": "promptlab.cli.history:prompts_check",
    "log": "promptlab.cli.log:log_wrap",
    "feedback": "promptlab.cli.feedback:feedback_cmd",
    "logs": "promptlab.cli.logs:logs",
    "trace": "promptlab.cli.logs:logs_trace",
    "costs": "promptlab.cli.logs:logs_costs",
    "experiment": "promptlab.cli.experiment:experiment",
    "compare": "promptlab.cli.compare:compare_cmd",
    "init": "promptlab.cli.init:init_project",
    "export": "promptlab.cli.export:export",
    "otlp": "promptlab.cli.export:otlp",
    "dashboard": "promptlab.cli.dashboard:dashboard_serve",
    "report": "promptlab.cli.dashboard:dashboard_report",
}


@click.group(
    cls=LazyGroup,
    lazy_subcommands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="promptlab")
@project_options
def main() -> None:
    """promptlab: prompts under version control, every LLM call logged, experiments
    with real statistics.

    \b
    Examples:
      promptlab prompts                         list prompts, versions and labels
      promptlab render code-review --var code=@app.py
    """
