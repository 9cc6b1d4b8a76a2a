"""``python -m bridges.gunicorn [gunicorn options] APP``: gunicorn with ``--bridges-frameworks``."""

from __future__ import annotations

import sys

from . import register_settings


def main() -> None:
    register_settings()
    from gunicorn.app.wsgiapp import run

    sys.argv[0] = "gunicorn"
    run()


if __name__ == "__main__":
    main()
