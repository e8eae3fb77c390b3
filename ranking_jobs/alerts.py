"""Alerts for the people who run the nightly DAG: a task that failed, and a night
still running past its deadline. Each names the DAG, the task, the day and the first
line of the error, and goes to every channel the settings name: a generic webhook
(JSON), Slack and e-mail through Airflow's own providers where they are installed.

Failures of the channels themselves are logged, never raised: an alert must not turn
a failed task into a different failure, nor break the triggerer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ranking_jobs.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    kind: str  # "task_failed" or "deadline_missed"
    dag_id: str
    task_id: str
    ds: str
    run_id: str
    error: str  # first line

    @property
    def text(self) -> str:
        what = "failed" if self.kind == "task_failed" else "missed its deadline"
        where = f"[{self.dag_id}] {self.task_id} for {self.ds}"
        return f"{where} {what}: {self.error} (run {self.run_id})"


def send(settings: Settings, alert: Alert) -> list[str]:
    """Deliver ``alert`` to every configured channel; the channels it reached."""
    reached = []
    channels = {
        "webhook": (settings.alerts.webhook_url, _webhook),
        "slack": (settings.alerts.slack_conn_id, _slack),
        "email": (settings.alerts.email_to, _email),
    }
    for name, (target, deliver) in channels.items():
        if not target:
            continue
        try:
            deliver(target, alert)
            reached.append(name)
        except Exception:  # a broken channel must not hide the alert from the others
            log.exception("alert %r could not be sent through %s", alert.text, name)
    log.warning("ALERT %s (sent to: %s)", alert.text, ", ".join(reached) or "no channel")
    return reached


def _webhook(url: str, alert: Alert) -> None:
    body = json.dumps({**asdict(alert), "text": alert.text}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _slack(conn_id: str, alert: Alert) -> None:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    SlackWebhookHook(slack_webhook_conn_id=conn_id).send(text=alert.text)


def _email(to: str, alert: Alert) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook() as smtp:
        smtp.send_email_smtp(
            to=[a.strip() for a in to.split(",") if a.strip()],
            subject=alert.text[:200],
            html_content=f"<pre>{alert.text}</pre>",
        )


def first_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Airflow's ``on_failure_callback`` of every task."""
    ti = context["ti"]
    start = context.get("data_interval_start") or context.get("logical_date")
    alert = Alert(
        kind="task_failed",
        dag_id=str(ti.dag_id),
        task_id=str(ti.task_id),
        ds=f"{start:%Y-%m-%d}" if start else "?",
        run_id=str(context.get("run_id") or ti.run_id),
        error=first_line(context.get("exception") or "unknown error"),
    )
    send(load_settings(), alert)


async def on_deadline_missed(context: Mapping[str, Any] | None = None, **_: Any) -> None:
    """The DAG's Deadline Alert callback (run by the triggerer). Airflow hands it the
    run, not its tasks: the task named is the first stage without a summary since the
    run started, i.e. the one still running or waiting."""
    run = dict((context or {}).get("dag_run") or {})
    deadline = (context or {}).get("deadline") or {}
    settings = load_settings()
    start = run.get("data_interval_start") or run.get("logical_date") or ""
    ds = str(start)[:10] or "?"
    alert = Alert(
        kind="deadline_missed",
        dag_id=str(run.get("dag_id", "?")),
        task_id=current_stage(settings, ds, run.get("start_date")),
        ds=ds,
        run_id=str(run.get("dag_run_id", "?")),
        error=f"the night was still running at its deadline {deadline.get('deadline_time', '?')}",
    )
    await asyncio.to_thread(send, settings, alert)


def current_stage(settings: Settings, ds: str, started: str | None) -> str:
    """The first nightly stage with no summary written for ``ds`` since ``started``."""
    from ranking_jobs.stages import NIGHTLY

    since = dt.datetime.fromisoformat(started).timestamp() if started else 0.0
    folder = Path(settings.paths.reports_dir) / ds
    for stage in NIGHTLY:
        path = folder / f"{stage.name}.json"
        if not path.exists() or path.stat().st_mtime < since:
            return stage.name
    return NIGHTLY[-1].name
