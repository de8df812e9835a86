"""The composition root: settings, app, call endpoint, REST, CLI."""
