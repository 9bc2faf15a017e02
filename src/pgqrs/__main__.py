"""`python -m pgqrs`: the command line."""

from pgqrs.cli.main import main

main()
