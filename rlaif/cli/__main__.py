"""`python -m rlaif.cli` (what `torchrun ... -m rlaif.cli train` and the tests run): the `rlaif` command."""

from rlaif.cli import app

app()
