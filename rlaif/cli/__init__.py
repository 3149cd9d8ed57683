"""The `rlaif` command line (typer). Every user error exits with code 2 and a message saying how to fix it.

Each command lives in a module of this folder (a group owns its `typer.Typer()`); this module makes
the root app and adds them, in the order `rlaif --help` lists them. Heavy imports stay inside the commands.
"""

from __future__ import annotations

import atexit
import gc

import typer

# Registered before Prefect is imported, so it runs after every other exit handler (Prefect's flush of
# its logs and events included): the objects left are the OS's to free. The interpreter's last
# garbage collection of Prefect's, pydantic's and pyarrow's objects would add 0.5 s to every command.
atexit.register(gc.freeze)

from rlaif.core.progress import quiet_library_bars  # noqa: E402

quiet_library_bars()  # before any Hugging Face library is imported

from rlaif.cli import datasets, evaluation, hub, iterate, models, ops, review, run, server, train  # noqa: E402 - after the exit handler
from rlaif.cli.common import sigterm_stops  # noqa: E402

app = typer.Typer(
    help="AI-feedback preference datasets: sample, judge (position-debiased), filter, version.", no_args_is_help=True
)
app.command("run")(sigterm_stops(run.run))
app.command("eval-judge")(evaluation.eval_judge)
app.command("train", help=train.EXAMPLE)(sigterm_stops(train.train))
app.command("eval-policy")(evaluation.eval_policy)
app.command("eval-rm")(evaluation.eval_rm)
app.command("serve-reward")(evaluation.serve_reward)
app.command("deploy", help=ops.DEPLOY_HELP)(ops.deploy)
app.command("serve", help=ops.SERVE_HELP)(ops.serve)
app.command("iterate", help=iterate.EXAMPLE)(sigterm_stops(iterate.iterate))
app.command("review", help=review.EXAMPLE)(review.review)
app.add_typer(datasets.app, name="datasets")
app.add_typer(models.app, name="models")
app.add_typer(server.app, name="server")
datasets.app.command("push")(hub.datasets_push)
datasets.app.command("pull")(hub.datasets_pull)
