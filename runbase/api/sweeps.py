"""Sweeps: a search over hyperparameters, and the runs that joined it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runbase.api.client import Client, iso_time
from runbase.backend.base import SweepRecord

if TYPE_CHECKING:
    from runbase.api.runs import Run, Runs


class Sweep:
    """A sweep: ``id``, ``entity``, ``project``, ``name``, ``config``, ``state``, ``runs``."""

    def __init__(
        self,
        client: Client,
        entity: str,
        project: str,
        sweep_id: str,
        attrs: SweepRecord | Mapping[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.entity = entity
        self.project = project
        self.id = sweep_id
        if not attrs:
            attrs = client.call(client.backend.get_sweep, entity, project, sweep_id)
        self._attrs: dict[str, Any] = dict(attrs) if isinstance(attrs, Mapping) else vars(attrs)
        self._runs: Runs | None = None

    @property
    def name(self) -> str:
        return self._attrs.get("name") or self.id

    @property
    def config(self) -> dict[str, Any]:
        return self._attrs.get("config") or {}

    @property
    def state(self) -> str | None:
        return self._attrs.get("state")

    @property
    def created_at(self) -> str | None:
        return iso_time(self._attrs.get("created_at"))

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def url(self) -> str:
        return self.client.url(self.entity, self.project, "sweeps", self.id)

    @property
    def runs(self) -> Runs:
        """The runs that joined the sweep, oldest first."""
        from runbase.api.runs import Runs

        if self._runs is None:
            filters = {"sweep": self.id}
            self._runs = Runs(self.client, self.entity, self.project, filters, "+created_at")
        return self._runs

    @property
    def order(self) -> str | None:
        """The order of the config's ``metric``: ascending to minimize, descending to maximize."""
        metric = self.config.get("metric")
        if not isinstance(metric, Mapping) or not metric.get("name"):
            return None
        prefix = "-" if metric.get("goal") == "maximize" else "+"
        return f"{prefix}summary_metrics.{metric['name']}"

    def best_run(self, order: str | None = None) -> Run | None:
        """The first run in ``order`` (default: by the config's metric), among the runs that
        have the metric; the newest run when there is no metric; None when there are no runs."""
        from runbase.api.runs import Runs

        order = order or self.order or "-created_at"
        filters: dict[str, Any] = {"sweep": self.id}
        key = order.lstrip("+-")
        if key.startswith(("summary_metrics.", "summary.")):
            metric = "summary_metrics." + key.split(".", 1)[1]
            filters = {"$and": [filters, {metric: {"$exists": True}}]}
        found = Runs(self.client, self.entity, self.project, filters, order, per_page=1)
        return next(iter(found), None)

    def __repr__(self) -> str:
        return f"<Sweep {self.path} ({self.state})>"
