"""``shoal serve``: a job service with a REST API, live WebSocket events and Prometheus
metrics. Jobs run through the one runner (``shoal.engine.run.runner``), in the service's own
TaskGroup; their state lives in the store. See docs/service.md."""

from shoal.service._app import create_app
from shoal.service._settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
