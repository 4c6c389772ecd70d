"""Core machinery: units, provenance, catalog loading, errors, random streams. Imports nothing above it."""
