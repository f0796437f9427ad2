"""The list of domain plugins mounted by the app and the CLI. Add a domain here, nowhere else."""

from __future__ import annotations

from server.core.plugin import Plugin


def plugins() -> list[Plugin]:
    from server.audit.plugin import PLUGIN as audit
    from server.backup.plugin import PLUGIN as backup
    from server.deviations.plugin import PLUGIN as deviations
    from server.directory.plugin import PLUGIN as directory
    from server.discharge.plugin import PLUGIN as discharge
    from server.health.plugin import PLUGIN as health
    from server.identity.plugin import PLUGIN as identity
    from server.messaging.plugin import PLUGIN as messaging
    from server.video.plugin import PLUGIN as video

    # Order matters for seed-demo: units exist before users are placed in them.
    return [health, audit, directory, identity, messaging, video, discharge, deviations, backup]
