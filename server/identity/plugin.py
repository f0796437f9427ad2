from server.core.plugin import Plugin
from server.identity.cli import register_cli
from server.identity.routes import api

PLUGIN = Plugin(name="identity", api=api, cli=register_cli)
