"""Who is calling: principals, sessions, personal access tokens and the authorisation policy."""
