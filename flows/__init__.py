"""Prefect flows: thin wiring of the plain functions in :mod:`monitor`."""
