"""A Python client for Fovea's task endpoints (``pip install 'fovea[client]'``).

``Client`` blocks, ``AsyncClient`` awaits; both return typed results (``serving.client.models``)
and raise ``FoveaAPIError`` with the server's message, code and request id. It needs httpx and
pydantic only: nothing of the server is imported. v2 users keep using tritonclient.
"""

from serving.client import models
from serving.client.aio import AsyncClient
from serving.client.errors import FoveaAPIError
from serving.client.sync import Client

__all__ = ["AsyncClient", "Client", "FoveaAPIError", "models"]
