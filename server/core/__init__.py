"""Cross-cutting building blocks shared by every domain: settings, errors, HTTP, database."""
