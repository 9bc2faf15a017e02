"""Programs that tests run as real subprocesses (`python -m tests.support.<name>`)."""
