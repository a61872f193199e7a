"""Two environments that would deploy to one Cloud Run service: found at build time.

A Cloud Run service is its project, region and name; `gcloud run services replace` of a second
manifest with the same three replaces the first. An environment that forgets to rename a service
(a staging file without `service_name`, a service added after the file was written) would
otherwise replace production's service with its staging build on its first deploy. The check
needs every environment file and every service's settings at once, so it is its own action
(the manifest rule's and the push-all's validation), apart from the manifest of one environment.
"""

from __future__ import annotations

from pathlib import Path

from bazel.tools.manifest_settings import SettingsError, merged_settings, read_environment


def environment_name(path: Path) -> str:
    """`deploy/environments/staging.json` -> `staging`, the name `--environment` takes."""
    return path.name.removesuffix(".json")


def collision_problems(services: list[dict], environments: list[Path]) -> list[str]:
    """One line per Cloud Run service (project, region, name) that two deployments would share:
    each of `services` (the rule's settings) in each of `environments` (files)."""
    problems: list[str] = []
    deployed_by: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for path in environments:
        name = environment_name(path)
        try:
            environment = read_environment(path)
        except SettingsError as error:
            problems += [f"environment {name} ({path}): {problem}" for problem in error.problems]
            continue
        for settings in services:
            try:
                merged = merged_settings(settings, environment)
            except SettingsError as error:
                problems += [
                    f"environment {name} ({path}), service {settings.get('service')}: {problem}"
                    for problem in error.problems
                ]
                continue
            target = (merged.project, merged.region, merged.service)
            deployed_by.setdefault(target, []).append((name, settings["service"]))
    for (project, region, run_name), users in sorted(deployed_by.items()):
        if len(users) < 2:
            continue
        # Empty with image_repository: then gcloud's configured project and region deploy it.
        project, region = project or "(gcloud's)", region or "(gcloud's)"
        where = f"Cloud Run service {run_name} (project {project}, region {region})"
        services_named = sorted({service for _, service in users})
        names = " and ".join(sorted({environment for environment, _ in users}))
        if len(services_named) == 1:
            problems.append(
                f"environments {names} would both deploy {services_named[0]} to {where}, "
                "so one would replace the other; give each environment its own project, region "
                'or name ("service_name": "{service}-staging")'
            )
        else:
            deployments = " and ".join(f"{service} in {env}" for env, service in sorted(users))
            problems.append(
                f"{deployments} would all deploy to {where}, so one would replace the other"
            )
    return problems
