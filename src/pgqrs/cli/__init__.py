"""The `pgqrs` command line (`pgqrs.cli.main:main`); not imported by `import pgqrs`."""

import pgqrs

from .. import _install, client

# The console script imports this package without our __init__.py when another wheel named
# `pgqrs` replaced it: say what to do instead of failing on a missing name later.
_install.refuse_mixed_install()
_install.refuse_foreign_package(getattr(pgqrs, "connect_with", None), client.connect_with)
