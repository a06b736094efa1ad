"""``python -m seqflow`` runs the command line (also under ``torchrun -m seqflow``)."""

from seqflow.cli import run

if __name__ == "__main__":
    run()
