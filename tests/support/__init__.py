"""What the tests share that is not a fixture (fixtures live in the conftest.py files).

Helpers that tests import (`target`, `cli`, `raw_db`, `waiting`, ...), and the programs tests
run as real subprocesses, from the repository root: `python -m tests.support.<name>` (each
says so in its docstring) and `pgqrs run tests.support.cli_handlers:NAME`.
"""
