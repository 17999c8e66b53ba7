"""The web UI served by ``adapters server`` under ``/ui``: server-rendered pages
(Jinja2, autoescaped) over the same registry, roles and namespaces as the JSON API."""
