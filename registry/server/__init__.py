"""``adapters server``: the registry over HTTP (JSON API ``/api/v1``), with access tokens.

Build the ASGI app with ``registry.server.app.create_app``; run it with
``registry.server.run.serve`` (uvicorn). docs/server.md describes the API and deployment.
"""
