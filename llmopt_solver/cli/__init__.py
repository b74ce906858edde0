"""The ``llmopt`` command line: a click group whose subcommands load lazily (fast start-up).

Errors become one line on stderr and an exit code: 0 ok, 1 infeasible, 2 bad input, 3 solver.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from llmopt_solver.errors import LlmoptError

# name -> "module:attribute" inside llmopt_solver.cli
COMMANDS = {
    "solve": "solve:solve",
    "predict": "predict:predict",
    "plan": "plan:plan",
    "catalog": "catalog:catalog",
    "validate": "validate:validate",
    "calibrate": "calibrate:calibrate",
}


class LlmoptGroup(click.Group):
    """A group that imports subcommands on demand and turns errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if self._available(n)]

    @staticmethod
    def _available(name: str) -> bool:
        mod = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(f"llmopt_solver.cli.{mod}") is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        mod, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"llmopt_solver.cli.{mod}"), attr)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            return super().main(argv, prog_name=prog_name or "llmopt", complete_var=complete_var,
                                standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("llmopt: aborted.", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            if debug:
                raise
            click.echo(f"llmopt: error: {exc.format_message()}", err=True)
            sys.exit(2)
        except LlmoptError as exc:
            if debug:
                raise
            click.echo(f"llmopt: {'infeasible' if exc.exit_code == 1 else 'error'}: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback
            if debug:
                raise
            click.echo(f"llmopt: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", err=True)
            sys.exit(3)


@click.group(cls=LlmoptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="llmopt", prog_name="llmopt")
def cli(debug: bool) -> None:
    """llmopt: the cheapest cloud GPU instance and KV-cache offload for an offline LLM batch job.

    \b
    llmopt solve    --model OPT-2.7B --batch-size 32 --input-len 128 --output-len 512 --slo-tps 100
    llmopt predict  --model OPT-2.7B --instance g6.xlarge --offload-ratio 0.4 ...
    llmopt plan     examples/plan_small.json
    llmopt catalog  [models|gpus|instances]
    llmopt validate measurements.csv
    """


def main() -> None:
    """Console-script entry point."""
    cli.main()
