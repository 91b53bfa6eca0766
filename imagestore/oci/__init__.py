"""Container image formats and transports, in plain Python.

Nothing in this package may import Django (a test enforces it): it is the part of
the engine that knows the OCI and Docker formats, and it is usable on its own.
"""
