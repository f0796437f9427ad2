"""Video planning meetings: waiting room, guest links, forwarding relay, TURN credentials."""
