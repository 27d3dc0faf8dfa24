"""`mlops migrate build-systems --system S [--release ID ...] [--dry-run]`: the store migration of release ids per
CI system (functions/service/migrations.py; docs/decisions.md). It works on the platform's store directly
(SQLite under $MLOPS_HOME, or Azure Table Storage with MLOPS_PLATFORM=azure), so it also runs with no host up."""

from __future__ import annotations

import argparse
from collections import Counter

from devhost.console import console
from functions.settings import Settings, SettingsError


def cmd_migrate_build_systems(args: argparse.Namespace) -> int:
    from functions.bootstrap import release_store
    from functions.service.context import utc_now
    from functions.service.migrations import stamp_build_systems

    settings = Settings.from_env()
    store = release_store(settings)
    try:
        stamps = stamp_build_systems(store, args.system, utc_now, only=args.release, dry_run=args.dry_run)
    except ValueError as exc:
        raise SettingsError(f"--system: {exc}") from None
    for stamp in stamps:
        build = f" (build {stamp.build_id})" if stamp.build_id else ""
        console.print(f"{stamp.release_id}{build}: {stamp.outcome}", markup=False)
    counts = Counter(stamp.outcome for stamp in stamps)
    summary = (
        ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no release without a build system"
    )
    console.print(f"build system {args.system}: {summary}{' (dry run: nothing changed)' if args.dry_run else ''}")
    return 1 if counts["busy (run again)"] or counts["not found"] or counts["not a legacy build release"] else 0


def add_migrate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser("migrate", help="one-time changes to the release store after an upgrade")
    kinds = migrate.add_subparsers(dest="migration", required=True)
    systems = kinds.add_parser(
        "build-systems",
        help="record which CI system made the releases whose ids name none (rel-<build id>), so the same "
        "build number from another system becomes a release of its own",
    )
    systems.add_argument(
        "--system", required=True, help="the CI system those builds came from: ado, github, jenkins, ..."
    )
    systems.add_argument(
        "--release", action="append", default=[], metavar="ID", help="only this release (repeat); default: all of them"
    )
    systems.add_argument("--dry-run", action="store_true", help="list what would be stamped, change nothing")
    systems.set_defaults(handler=cmd_migrate_build_systems)
