"""The fake Admin API answers as Google's reference shows a v1 Service (service_v1.json): every
field path of the model's metadata and status is in the fake's answer to a get, so a release
tested against the fake reads the fields Cloud Run fills."""

from __future__ import annotations

import json

import requests
from absl.testing import absltest

from tests.release.fake_run_api import FIXTURE, FakeRunApi

# Maps whose keys the fake does not match one by one: Cloud Run's own annotations (operation
# id, URLs, ingress status) and labels vary by service; the maps themselves must be there.
NOT_MODELLED = {"metadata.annotations", "metadata.labels"}


def paths(value: object, prefix: str = "") -> set[str]:
    """Dotted paths of every key in `value`; list items share their list's path."""
    found = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            if path not in NOT_MODELLED:
                found |= paths(child, path)
    elif isinstance(value, list):
        for child in value:
            found |= paths(child, prefix)
    return found


class FakeApiTest(absltest.TestCase):
    def test_get_answers_the_model_shape(self) -> None:
        model = json.loads(FIXTURE.read_text(encoding="utf-8"))
        api = FakeRunApi("token", "http://127.0.0.1:1")
        self.addCleanup(api.close)
        api.seed("hello", "hello-00001-abc")
        url = f"{api.url}/apis/serving.knative.dev/v1/namespaces/my-project/services/hello"
        headers = {"Authorization": "Bearer token"}
        body = json.loads(requests.get(url, headers=headers, timeout=10).text)
        live = body["status"]["traffic"][0]
        body["spec"]["traffic"] = [
            {"percent": 100, "revisionName": live["revisionName"], "tag": "candidate"}
        ]
        body["spec"]["template"]["metadata"]["name"] = "hello-00001-abc"
        requests.put(url, json=body, headers=headers, timeout=10).raise_for_status()
        requests.get(url, headers=headers, timeout=10)  # the first read after a write lags
        answer = requests.get(url, headers=headers, timeout=10).json()
        wanted = {p for p in paths(model) if p.split(".")[0] in ("metadata", "status")}
        wanted = {p for p in wanted if not any(p.startswith(n + ".") for n in NOT_MODELLED)}
        self.assertEqual(sorted(wanted - paths(answer)), [])

    def test_errors_have_googles_shape(self) -> None:
        api = FakeRunApi("token", "http://127.0.0.1:1")
        self.addCleanup(api.close)
        url = f"{api.url}/apis/serving.knative.dev/v1/namespaces/p/services/missing"
        answer = requests.get(url, headers={"Authorization": "Bearer token"}, timeout=10)
        self.assertEqual(answer.status_code, 404)
        self.assertEqual(set(answer.json()["error"]), {"code", "message", "status"})
        self.assertEqual(answer.json()["error"]["status"], "NOT_FOUND")


if __name__ == "__main__":
    absltest.main()
