"""riskon's runtime: CLI, config, scheduler, feeds, notifiers and chat commands."""

__version__ = "0.1.0"
