"""A Docker Engine API compatible endpoint, so the docker CLI and the Docker SDK drive the
dashboard. Every handler calls the same services as the REST API.
https://docs.docker.com/engine/api/v1.47/
"""
