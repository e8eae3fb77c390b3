"""``ranking-jobs``: one subcommand per stage, the whole night, the demo and reads.

Every subcommand builds the same RunContext the Airflow tasks build, so running
``ranking-jobs build_features --ds 2026-01-31`` is exactly the Airflow task.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ranking_jobs.context import RunContext, parse_ds
from ranking_jobs.runner import run_stage
from ranking_jobs.settings import ENV_PREFIX, Settings, load_settings, warn_unknown_variables
from ranking_jobs.stages import AVAILABILITY, NIGHTLY

log = logging.getLogger("ranking_jobs.cli")


def _ds_arg(value: str) -> dt.date:
    try:
        return parse_ds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _common(p: argparse.ArgumentParser, *, ds: bool = True) -> None:
    if ds:
        p.add_argument(
            "--ds",
            required=True,
            metavar="YYYY-MM-DD",
            type=_ds_arg,
            help="logical date: the UTC day whose partition dt=YYYY-MM-DD is processed",
        )
        p.add_argument(
            "--run-id",
            default=None,
            help="run id stamped on every published row (default manual__<ds>)",
        )
    p.add_argument(
        "--data-root",
        default=None,
        help=f"lake root, a folder or s3://bucket/prefix ({ENV_PREFIX}DATA_ROOT, default ./data)",
    )
    p.add_argument(
        "--state-dir",
        default=None,
        help=f"registry, online store, MLflow and reports ({ENV_PREFIX}STATE_DIR, default ./var)",
    )
    p.add_argument(
        "--scale",
        default=None,
        choices=["tiny", "small", "medium", "large"],
        help=f"synthetic marketplace preset ({ENV_PREFIX}SCALE, default tiny)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ranking-jobs",
        description="Nightly ranking pipeline of the marketplace. Every option also reads "
        f"its {ENV_PREFIX}* environment variable; flags win.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("generate", help="write a synthetic marketplace ending on --ds")
    _common(p)
    for stage in NIGHTLY:
        _common(sub.add_parser(stage.name, help=stage.doc, description=stage.doc))
    p = sub.add_parser("night", help="run every nightly stage in order, without Airflow")
    _common(p)
    p = sub.add_parser(
        "airflow-test", help="run the ranking_nightly DAG for --ds through `airflow dags test`"
    )
    _common(p)
    p = sub.add_parser(
        "airflow",
        help="start a local Airflow (api-server, scheduler, dag-processor, triggerer; "
        "LocalExecutor on PostgreSQL) with the DAGs and the UI, on a demo marketplace for "
        "--ds if the lake has none; Ctrl-C stops it",
    )
    _common(p)
    p.add_argument("--port", type=int, default=8080, help="UI and API port (default 8080)")
    p = sub.add_parser(
        "demo",
        help="generate data, run the DAG through Airflow's test runner, "
        "print three users' lists and where to look",
    )
    _common(p)
    p = sub.add_parser(
        "import",
        help="load a real data set into raw/events, raw/items, "
        "raw/users for every day of --start..--end",
    )
    _common(p, ds=False)
    p.add_argument(
        "source",
        choices=["uci", "interactions"],
        help="uci: the UCI Online Retail parquet; interactions: a CSV/Parquet log "
        "with user_id, item_id, timestamp and event_type or weight",
    )
    p.add_argument("path", help="the file to import")
    p.add_argument("--items", default=None, help="items table (interactions only)")
    p.add_argument("--users", default=None, help="users table (interactions only)")
    p.add_argument(
        "--start",
        default=None,
        metavar="YYYY-MM-DD",
        help="first day to write (default: the data's first day)",
    )
    p.add_argument(
        "--end",
        default=None,
        metavar="YYYY-MM-DD",
        help="last day to write (default: the data's last day)",
    )
    # `availability` for people, `refresh_availability` (the stage's name) like every
    # nightly subcommand; two parsers, so each one's usage line names itself.
    for name in ("availability", AVAILABILITY.name):
        p = sub.add_parser(
            name,
            help="write the items sold since the live lists were made to the online store "
            "(the hourly ranking_availability task)",
            description=AVAILABILITY.doc,
        )
        _common(p, ds=False)
        p.add_argument(
            "--ds",
            default=None,
            metavar="YYYY-MM-DD",
            type=_ds_arg,
            help="day of the audit partition sold_items/dt= (default: today, UTC)",
        )
        p.add_argument("--run-id", default=None, help="run id (default manual__<ds>)")
    p = sub.add_parser("serve", help="run the recommendation HTTP API (FastAPI on uvicorn)")
    _common(p, ds=False)
    p.add_argument(
        "--host", default=None, help=f"bind address ({ENV_PREFIX}SERVE_HOST, default 127.0.0.1)"
    )
    p.add_argument(
        "--port", type=int, default=None, help=f"port ({ENV_PREFIX}SERVE_PORT, default 8000)"
    )
    p = sub.add_parser(
        "feast-yaml",
        help="write feature_store.yaml for Feast's own CLI (feast serve, feast ui) from the "
        "settings, into the Feast repository or --output",
    )
    _common(p, ds=False)
    p.add_argument("--output", default=None, help="folder to write it to")
    p = sub.add_parser("recommend", help="a user's list from the online store (or the fallback)")
    _common(p, ds=False)
    p.add_argument("--user", type=int, required=True, help="user id")
    p.add_argument("--limit", type=int, default=20, help="items to return (default 20)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(data_root=args.data_root, state_dir=args.state_dir, scale=args.scale)


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    from ranking_jobs.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    warn_unknown_variables(log)
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"error: bad settings: {exc}", file=sys.stderr)
        return 2

    if args.command == "recommend":
        from ranking_jobs.serving import recommend

        _print(recommend(settings, args.user, args.limit).as_dict())
        return 0

    if args.command == "feast-yaml":
        from ranking_jobs.feast_store import write_repo_yaml

        print(write_repo_yaml(settings, args.output))
        return 0

    if args.command == "serve":
        from ranking_jobs.serving.api import serve

        serve(settings, args.host, args.port)
        return 0

    if args.command in ("availability", AVAILABILITY.name):
        ds = args.ds or dt.datetime.now(dt.UTC).date()
        _print(run_stage(AVAILABILITY.name, RunContext.create(ds, settings, args.run_id)))
        return 0

    if args.command == "import":
        from ranking_jobs.data.adapters import run_import

        try:
            _print(
                run_import(
                    settings,
                    args.source,
                    args.path,
                    items=args.items,
                    users=args.users,
                    start=args.start,
                    end=args.end,
                )
            )
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    ctx = RunContext.create(args.ds, settings, args.run_id)
    if args.command == "generate":
        from ranking_jobs.data import generate

        _print(generate(ctx))
    elif args.command == "night":
        for stage in NIGHTLY:
            run_stage(stage.name, ctx, end_spark=True)
    elif args.command == "airflow-test":
        from ranking_jobs.airflow_runner import run_dag_test

        return run_dag_test(settings, ctx.ds)
    elif args.command == "airflow":
        from ranking_jobs.airflow_local import run_local_airflow

        return run_local_airflow(ctx, args.port)
    elif args.command == "demo":
        from ranking_jobs.demo import run_demo

        return run_demo(ctx)
    else:
        _print(run_stage(args.command, ctx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
