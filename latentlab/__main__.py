"""``python -m latentlab`` runs the command line."""

from .cli import main

main()
