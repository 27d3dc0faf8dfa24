"""The Azure Functions app (Python v2 model): triggers and routes only.

Each function body is one call into functions/entrypoints/, which hands it to the service in one
more step (docs/architecture.md has the table). Nothing heavy is imported here: the orchestrator
and its adapters are built on first use.
"""

import azure.functions as func

from functions import bootstrap
from functions.entrypoints import eventgrid, http_api, scheduled
from functions.entrypoints.hooks import azure_devops, generic, github
from functions.entrypoints.ui import pages

# Every setting is read and checked now (the approval and gate policies included): a bad one stops the
# app at start, naming it, instead of failing each request. Cheap: no adapter is built here.
bootstrap.settings()

# Who may call a route:
# - approve and reject change state, so they need a proven identity, which the app checks itself and
#   answers 401 without (Easy Auth's principal on Azure, the CLI's signature locally, or a signed link):
#   AuthLevel.ANONYMOUS, because a function key is a shared secret, not an identity, and must never end
#   up in a link;
# - the read routes (releases, one release, dead letters, parked events) stay behind the platform's function key
#   (AuthLevel.FUNCTION, the app's default) for now, until reading is tied to identity too;
# - health, the API's OpenAPI document (openapi.json), and the CI hooks (which check their own
#   signatures), are anonymous;
# - the approval page (ui/...) is anonymous to the platform and signs its reader in itself: App Service
#   Authentication on Azure, a one-time sign-in link and a session cookie locally (a browser cannot
#   send a function key, and must not be handed one).
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("on_build_event")
@app.event_grid_trigger(arg_name="event")
def on_build_event(event: func.EventGridEvent) -> None:
    """Custom topic: MLOps.BuildCompleted starts a release."""
    eventgrid.on_event("on_build_event", event)


@app.function_name("on_ml_event")
@app.event_grid_trigger(arg_name="event")
def on_ml_event(event: func.EventGridEvent) -> None:
    """Azure ML: RunCompleted, RunStatusChanged, ModelRegistered, DatasetDriftDetected."""
    eventgrid.on_event("on_ml_event", event)


@app.function_name("on_registry_event")
@app.event_grid_trigger(arg_name="event")
def on_registry_event(event: func.EventGridEvent) -> None:
    """Azure Container Registry: ImagePushed, ImageDeleted."""
    eventgrid.on_event("on_registry_event", event)


@app.function_name("on_storage_event")
@app.event_grid_trigger(arg_name="event")
def on_storage_event(event: func.EventGridEvent) -> None:
    """Storage: BlobCreated under MLOPS_DATA_CONTAINER / MLOPS_DATA_PREFIX starts retraining on that data."""
    eventgrid.on_event("on_storage_event", event)


@app.function_name("reconcile")
# run_on_startup: every instance that starts runs one pass at once, so a host restarted after a crash
# retries the claims its dead predecessor held in seconds (docs/reliability.md). A pass is idempotent
# and guarded by the store's version checks, so extra passes on scale-out or recycling are harmless.
@app.timer_trigger(schedule="%MLOPS_RECONCILE_SCHEDULE%", arg_name="timer", run_on_startup=True)
def reconcile(timer: func.TimerRequest) -> None:
    """At start and on the MLOPS_RECONCILE_SCHEDULE setting (default every minute): expire approvals,
    re-check stuck steps, retry claims a dead instance held, recover missed events, run due background work."""
    scheduled.reconcile(timer)


@app.function_name("follow_operations")
@app.timer_trigger(schedule="%MLOPS_FOLLOW_SCHEDULE%", arg_name="timer", run_on_startup=True)
def follow_operations(timer: func.TimerRequest) -> None:
    """At start and on MLOPS_FOLLOW_SCHEDULE (default every 10 s): one look at each deployment coming up or traffic
    change in flight, and the release carried on when one has ended. No invocation waits for them."""
    scheduled.follow(timer)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.health(req)


@app.function_name("list_releases")
@app.route(route="releases", methods=["GET"])
def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.list_releases(req)


@app.function_name("get_release")
@app.route(route="releases/{id}", methods=["GET"])
def get_release(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.get_release(req)


@app.function_name("approve_release")
@app.route(route="releases/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def approve_release(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.approve_release(req)


@app.function_name("decline_release")
@app.route(route="releases/{id}/reject", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def decline_release(req: func.HttpRequest) -> func.HttpResponse:
    """A person declines the release (state "declined"); the URL keeps the API's word."""
    return http_api.decline_release(req)


@app.function_name("rollback_production")
@app.route(route="production/rollback", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def rollback_production(req: func.HttpRequest) -> func.HttpResponse:
    """Put the previous or an earlier registered version back in production, tested before traffic moves."""
    return http_api.rollback(req)


@app.function_name("dead_letters")
@app.route(route="dead-letters", methods=["GET"])
def dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    """Events and background work that could not be processed: a page, newest first (?limit=&before=)."""
    return http_api.dead_letters(req)


@app.function_name("parked_events")
@app.route(route="parked", methods=["GET"])
def parked_events(req: func.HttpRequest) -> func.HttpResponse:
    """Events waiting for their release to be ready for them, and when they expire into dead letters."""
    return http_api.parked_events(req)


@app.function_name("azure_devops_hook")
@app.route(route="hooks/azure-devops", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def azure_devops_hook(req: func.HttpRequest) -> func.HttpResponse:
    """Azure DevOps build.complete service hook (basic auth or X-MLOps-Secret)."""
    return azure_devops.azure_devops(req)


@app.function_name("github_hook")
@app.route(route="hooks/github", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def github_hook(req: func.HttpRequest) -> func.HttpResponse:
    """GitHub workflow_run webhook (X-Hub-Signature-256 verified)."""
    return github.github(req)


@app.function_name("generic_hook")
@app.route(route="hooks/generic", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def generic_hook(req: func.HttpRequest) -> func.HttpResponse:
    """Any CI system (Jenkins, GitLab, Travis ...): HMAC-SHA256 over timestamp + "." + body, in a time window."""
    return generic.generic(req)


@app.function_name("ui_releases")
@app.route(route="ui", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_releases(req: func.HttpRequest) -> func.HttpResponse:
    """The approval page: releases, filtered by state."""
    return pages.releases(req)


@app.function_name("ui_release")
@app.route(route="ui/releases/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_release(req: func.HttpRequest) -> func.HttpResponse:
    """One release with its evidence, timeline and the approve / decline forms."""
    return pages.release(req)


@app.function_name("ui_approve")
@app.route(route="ui/releases/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_approve(req: func.HttpRequest) -> func.HttpResponse:
    return pages.approve(req)


@app.function_name("ui_decline")
@app.route(route="ui/releases/{id}/reject", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_decline(req: func.HttpRequest) -> func.HttpResponse:
    return pages.decline(req)


@app.function_name("ui_rollback")
@app.route(route="ui/releases/{id}/rollback", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_rollback(req: func.HttpRequest) -> func.HttpResponse:
    """Put this release's version back in production: a new release, tested before traffic moves."""
    return pages.rollback(req)


@app.function_name("ui_login")
@app.route(route="ui/login", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_login(req: func.HttpRequest) -> func.HttpResponse:
    """The local one-time sign-in link (`mlops ui`); on Azure, App Service Authentication's sign-in."""
    return pages.login(req)


@app.function_name("ui_logout")
@app.route(route="ui/logout", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def ui_logout(req: func.HttpRequest) -> func.HttpResponse:
    return pages.logout(req)


@app.function_name("openapi")
@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """This API described as OpenAPI 3.0.3 (docs/api.md): public, like the routes it lists."""
    from functions.entrypoints import openapi as spec  # on the first request: the app's start never pays for it

    return spec.openapi(req)
