"""Persistent state of the service: tables, migrations, and the one repository module."""
