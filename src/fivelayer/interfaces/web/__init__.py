"""The local web app (FastAPI, server-rendered pages, a JSON API with an OpenAPI document).

Needs the ``web`` extra: ``pip install 'fivelayer[web]'``. Run it with ``fivelayer serve``.
"""

from fivelayer.interfaces.web.app import MAX_BODY_BYTES, RUN_TIMEOUT_S, create_app

__all__ = ["MAX_BODY_BYTES", "RUN_TIMEOUT_S", "create_app"]
