"""The `pgqrs` command line (`pgqrs.cli.main:main`); not imported by `import pgqrs`."""
