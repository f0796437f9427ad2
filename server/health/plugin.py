from server.core.plugin import Plugin
from server.health.routes import api, setup_routes

PLUGIN = Plugin(name="health", api=api, setup_routes=setup_routes)
