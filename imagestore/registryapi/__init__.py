"""This store as an OCI Distribution registry at ``/v2/`` (services.registry_serve does the work)."""
