from server.core.plugin import Plugin

PLUGIN = Plugin(name="video")
