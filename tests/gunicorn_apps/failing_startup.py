"""An app whose startup hook fails: the worker cannot boot, and gunicorn must stop, not loop."""

from bridges import gunicorn as bgu


@bgu.on_startup
async def connect_to_the_database(worker: bgu.HubWorker) -> None:
    raise RuntimeError("the database at db.invalid does not answer")


def app(environ, start_response):
    start_response("200 OK", [])
    return [b"never served"]
