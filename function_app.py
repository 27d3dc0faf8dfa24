"""The Azure Functions app (Python v2 model): triggers and routes only.

Each function body is one call into functions/. Nothing heavy is imported here: the
orchestrator and its adapters are built on first use.
"""

import azure.functions as func

from functions import entrypoints, hooks

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("on_build_event")
@app.event_grid_trigger(arg_name="event")
def on_build_event(event: func.EventGridEvent) -> None:
    """Custom topic: MLOps.BuildCompleted starts a release."""
    entrypoints.on_event("on_build_event", event)


@app.function_name("on_ml_event")
@app.event_grid_trigger(arg_name="event")
def on_ml_event(event: func.EventGridEvent) -> None:
    """Azure ML: RunCompleted, RunStatusChanged, ModelRegistered, DatasetDriftDetected."""
    entrypoints.on_event("on_ml_event", event)


@app.function_name("on_registry_event")
@app.event_grid_trigger(arg_name="event")
def on_registry_event(event: func.EventGridEvent) -> None:
    """Azure Container Registry: ImagePushed, ImageDeleted."""
    entrypoints.on_event("on_registry_event", event)


@app.function_name("reconcile")
@app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False)
def reconcile(timer: func.TimerRequest) -> None:
    """Every minute: expire approvals, re-check stuck steps, recover missed events."""
    entrypoints.reconcile(timer)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return entrypoints.health(req)


@app.function_name("list_releases")
@app.route(route="releases", methods=["GET"])
def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    return entrypoints.list_releases(req)


@app.function_name("get_release")
@app.route(route="releases/{id}", methods=["GET"])
def get_release(req: func.HttpRequest) -> func.HttpResponse:
    return entrypoints.get_release(req)


@app.function_name("approve_release")
@app.route(route="releases/{id}/approve", methods=["POST"])
def approve_release(req: func.HttpRequest) -> func.HttpResponse:
    return entrypoints.approve_release(req)


@app.function_name("reject_release")
@app.route(route="releases/{id}/reject", methods=["POST"])
def reject_release(req: func.HttpRequest) -> func.HttpResponse:
    return entrypoints.reject_release(req)


@app.function_name("dead_letters")
@app.route(route="dead-letters", methods=["GET"])
def dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    return entrypoints.dead_letters(req)


@app.function_name("azure_devops_hook")
@app.route(route="hooks/azure-devops", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def azure_devops_hook(req: func.HttpRequest) -> func.HttpResponse:
    """Azure DevOps build.complete service hook (basic auth or X-MLOps-Secret, checked in functions.hooks)."""
    return hooks.azure_devops(req)


@app.function_name("github_hook")
@app.route(route="hooks/github", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def github_hook(req: func.HttpRequest) -> func.HttpResponse:
    """GitHub workflow_run webhook (X-Hub-Signature-256 verified in functions.hooks)."""
    return hooks.github(req)
