"""Endpoint tests on Azure: the local tester's checks, with the AKS endpoint's key and the model from the registry.

The checks are ``platforms.common.endpoint_tests.HttpEndpointTester``'s (smoke: health + one row;
integration: the registered model's own predictions, malformed input gets a 4xx). What differs:

- The production endpoint (``endpoint.name == settings.endpoint``) needs its key: every request
  carries ``Authorization: Bearer <key>`` from ``ml_client.online_endpoints.get_keys``, and
  ``azureml-model-deployment: <the release's deployment>`` so the results are about the release
  that was just deployed, not about whichever deployment the router picked while the traffic
  change propagates, or at all: a new deployment is tested directly, before it has any traffic.
  Its health check asks Azure ML instead of GET / (the endpoint's root is the cluster's router,
  not the scoring server): the release's deployment is provisioned (Succeeded), whatever its
  traffic share. Without a release (``endpoint.version`` empty): the endpoint is provisioned and
  some deployment has traffic.
- Other endpoints (ACI staging) are called as they are, like locally.
- The model is fetched with the injected ``model_files(model, directory)`` (on Azure: a download
  from the registry) into a temporary directory.
- A refusal before the scoring script (401, 403, 404) does not count as "malformed input rejected".

The key is never logged and is replaced by ``***`` wherever it could show up in a report (e.g. a
``requests`` error that quotes a header).
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import requests

from functions.domain.refs import Endpoint, ModelRef, TestReport
from platforms.azure.production import DEPLOYMENT_HEADER, deployment_name
from platforms.common.endpoint_tests import HttpClient, HttpEndpointTester
from platforms.common.model_files import ModelFiles

if TYPE_CHECKING:
    from platforms.azure.settings import AzureSettings

MASK = "***"


class AzureEndpointTester(HttpEndpointTester):
    """EndpointTester port for Azure endpoints (AKS production with key auth, ACI staging without)."""

    def __init__(
        self,
        ml_client: Any,
        settings: AzureSettings,
        model_files: ModelFiles,
        rows: int = 20,
        timeout_s: float = 30.0,
        data: str = "diabetes",
        http: HttpClient = requests,
    ) -> None:
        super().__init__(data=data, rows=rows, timeout_s=timeout_s, model_files=model_files, http=http)
        self.ml_client = ml_client
        self.settings = settings
        self._secrets: set[str] = set()
        self._secrets_lock = threading.Lock()

    def smoke(self, endpoint: Endpoint) -> TestReport:
        return self._masked(super().smoke(endpoint))

    def integration(self, endpoint: Endpoint, model: ModelRef) -> TestReport:
        return self._masked(super().integration(endpoint, model))

    # ---- what differs from the local tester -----------------------------------------
    def _is_production(self, endpoint: Endpoint) -> bool:
        return endpoint.name == self.settings.endpoint

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        if not self._is_production(endpoint):
            return {}
        headers = {"Authorization": f"Bearer {self._key(endpoint.name)}"}
        if endpoint.version:
            headers[DEPLOYMENT_HEADER] = deployment_name(endpoint.version)
        return headers

    def _key(self, endpoint_name: str) -> str:
        """The endpoint's primary key (or token, for an aml_token endpoint), fetched per request so a
        regenerated key is picked up; remembered only to mask it in reports."""
        credentials = self.ml_client.online_endpoints.get_keys(endpoint_name)
        secret = getattr(credentials, "primary_key", None) or getattr(credentials, "access_token", None)
        if not secret:
            raise RuntimeError(f"online endpoint {endpoint_name} returned no key or token")
        with self._secrets_lock:
            self._secrets.add(secret)
        return str(secret)

    def _health(self, endpoint: Endpoint) -> tuple[bool, str]:
        if not self._is_production(endpoint):
            return super()._health(endpoint)
        if not endpoint.version:
            return self._endpoint_health(endpoint.name)
        name = deployment_name(endpoint.version)
        # Provisioning succeeds only once the container's readiness probe passed (Azure ML waits for
        # it); the traffic share does not matter: the requests name the deployment in their header.
        state = self.ml_client.online_deployments.get(name=name, endpoint_name=endpoint.name).provisioning_state
        return state == "Succeeded", f"deployment {name} of {endpoint.name}: provisioning {state}"

    def _endpoint_health(self, endpoint_name: str) -> tuple[bool, str]:
        current = self.ml_client.online_endpoints.get(endpoint_name)
        state = current.provisioning_state
        traffic = {name: share for name, share in (current.traffic or {}).items() if share}
        detail = f"endpoint {endpoint_name}: provisioning {state}, traffic {json.dumps(traffic, sort_keys=True)}"
        if not traffic:
            detail += " (no deployment has traffic)"
        return state == "Succeeded" and bool(traffic), detail

    def _masked(self, report: TestReport) -> TestReport:
        with self._secrets_lock:
            # as sent, as repr() quotes it (requests' InvalidHeader does), as the summary's whitespace folding leaves it
            forms = {form for s in self._secrets for form in (s, repr(s)[1:-1], " ".join(s.split())) if form.strip()}
        secrets = sorted(forms, key=len, reverse=True)
        if not secrets:
            return report

        def mask(text: Any) -> Any:
            if not isinstance(text, str):
                return text
            for secret in secrets:
                text = text.replace(secret, MASK)
            return text

        checks = [{key: mask(value) for key, value in check.items()} for check in report.checks]
        return TestReport(report.passed, mask(report.summary), checks)
