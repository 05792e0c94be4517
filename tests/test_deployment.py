"""prefect.yaml is valid for `prefect deploy` and schedules the ingest flow."""

from __future__ import annotations

from datetime import timedelta

import yaml
from prefect.cli.deploy._models import PrefectYamlModel

from tests.conftest import REPO


def test_prefect_yaml_defines_an_ingest_deployment_every_15_minutes() -> None:
    config = PrefectYamlModel.model_validate(
        yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    )
    ingest_deployment = next(d for d in config.deployments if d.name == "ingest")
    assert ingest_deployment.entrypoint == "flows/ingest.py:ingest"
    assert [s.interval for s in ingest_deployment.schedules] == [timedelta(minutes=15)]
