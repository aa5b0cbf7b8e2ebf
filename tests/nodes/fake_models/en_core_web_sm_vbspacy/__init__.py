"""A stand-in for the spaCy model package with no pipeline in it (test of fail-closed screening)."""
