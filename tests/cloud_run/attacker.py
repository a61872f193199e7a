"""What another local user tries against the local Cloud Run's Admin API, run as that user
(`nobody`) with the system's python3 and its standard library only.

It reads one JSON object on stdin: the API's URL, the key file's path, a Service manifest to
create, a made-up token and the assertions to trade at /token (made by the test: the attacker
could make them just as well). It prints one JSON object: each attempt's HTTP status and
whether it got a token or a service.

Usage: attacker.py < PLAN.json
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def call(url: str, method: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"{}")


def create(plan: dict, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{plan['api']}{plan['services_path']}"
    return call(url, "POST", json.dumps(plan["manifest"]).encode(), headers)[0]


def main() -> None:
    plan = json.load(sys.stdin)
    report: dict[str, dict[str, object]] = {
        "no_token": {"code": create(plan, None)},
        "made_up_token": {"code": create(plan, plan["made_up_token"])},
    }
    for name, assertion in plan["assertions"].items():
        form = urllib.parse.urlencode({"grant_type": JWT_BEARER, "assertion": assertion})
        code, body = call(
            f"{plan['api']}/token",
            "POST",
            form.encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        granted = body.get("access_token")
        report[f"token_{name}"] = {
            "code": code,
            "granted": bool(granted or body.get("id_token")),
            # Had a token been granted, what it would have let this user do.
            "create_with_it": create(plan, granted) if granted else None,
        }
    try:
        with open(plan["key_file"]) as key:
            report["read_key"] = {"error": None, "read": bool(key.read())}
    except OSError as error:
        report["read_key"] = {"error": type(error).__name__, "read": False}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
