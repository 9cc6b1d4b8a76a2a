"""eventlet, imported for the hub without its import-time notice.

eventlet 0.36+ warns once per process, at its first import, that it is
deprecated and that new projects should not use it.  With
``frameworks="auto"`` the hub imports every installed framework, so a service
that never touches eventlet would print that notice at every start (and a
test run that forbids warnings would fail).  Code that imports eventlet
itself before the hub attaches sees the notice as usual.
Every module of this package that imports eventlet imports this one first.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet  # noqa: F401
