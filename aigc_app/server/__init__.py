"""`aigc serve`: one local ASGI server for an OpenAI-compatible API, the prompt and run APIs, a playground and a
report viewer.

    from aigc_app.server import ServeSettings, create_app
    app = create_app(ServeSettings(config="aigc.yaml"))  # any ASGI server runs it; `aigc serve` uses uvicorn
"""

from aigc_app.server.app import create_app
from aigc_app.server.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
