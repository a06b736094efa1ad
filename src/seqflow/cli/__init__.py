"""The ``seqflow`` command line: parse options, call :mod:`seqflow.api`, draw with Rich.

User mistakes (``SeqflowError``) print one red line on stderr and exit with code 2; generated
sequences go to stdout only when no ``-o`` file is given, so ``seqflow sample`` pipes. Each
module registers its commands on the one Typer app, in the order ``--help`` lists them.
"""

# isort: off
from seqflow.cli import fit  # noqa: F401
from seqflow.cli import sample  # noqa: F401
from seqflow.cli import evaluate  # noqa: F401
from seqflow.cli import oracle  # noqa: F401
from seqflow.cli import export  # noqa: F401
from seqflow.cli import plot  # noqa: F401
from seqflow.cli._app import app, run

# isort: on

__all__ = ["app", "run"]
