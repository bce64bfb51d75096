"""Fakes of host scripting modules, following their documented APIs (only the calls shotfill makes)."""
