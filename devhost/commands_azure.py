"""`mlops azure bootstrap [--dry-run]`: the one-time Azure setup, run with the operator's own login.

The work is platforms/azure/provisioning.py's; this module is the command around it: its arguments,
the settings error and the exit code.
"""

from __future__ import annotations

import argparse
import os

from functions.settings import SettingsError, data_trigger_from_env


def cmd_azure_bootstrap(args: argparse.Namespace) -> int:
    """`mlops azure bootstrap [--dry-run]`: platforms/azure/provisioning.py with the operator's login."""
    from functions.service.subscriptions import FUNCTION_EVENT_TYPES
    from platforms.azure.provisioning import provision
    from platforms.azure.settings import AzureSettings

    try:
        settings = AzureSettings.from_env()
    except SettingsError as exc:
        print(f"mlops azure bootstrap: {exc}")
        print("set them from the deployment: see docs/azure.md, 'Settings for the mlops command'")
        return 2
    where = f"workspace {settings.workspace} in {settings.resource_group}"
    print(f"mlops azure bootstrap{' (dry run: nothing is changed)' if args.dry_run else ''}: {where}")
    # The service's table of event types per function: provisioning, an adapter, may not import it.
    function_event_types = dict(FUNCTION_EVENT_TYPES)
    if data_trigger_from_env(os.environ, "azure") is None:
        # infra/main.bicep deploys no storage system topic or subscription while dataContainer is empty.
        del function_event_types["on_storage_event"]
        print("event subscription on_storage_event: off (MLOPS_DATA_CONTAINER is not set: no retraining on new data)")
    lines = provision(settings, function_event_types, dry_run=args.dry_run, echo=print)
    return 1 if any(": failed (" in line for line in lines) else 0


def add_azure_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``azure bootstrap [--dry-run]`` on the ``mlops`` command's subparsers."""
    azure = subparsers.add_parser("azure", help="set up and check the Azure side (MLOPS_PLATFORM=azure)")
    azure_commands = azure.add_subparsers(dest="azure_command", required=True)
    bootstrap_parser = azure_commands.add_parser(
        "bootstrap",
        help="one-time setup, safe to repeat: workspace (if missing), compute cluster (unless "
        "AZUREML_COMPUTE=serverless), training environment, components; checks the Event Grid subscriptions",
    )
    bootstrap_parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    bootstrap_parser.set_defaults(handler=cmd_azure_bootstrap)
    return azure
