"""`hpass-bridge achievement`: define a course's badges and their award rules.

The award rule is the JSON document described in docs/award-rules.md, the same one
the instructor's page stores.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading

import click

from lti_tool.cli_support import (
    emit,
    fields,
    json_option,
    operator_session,
    provider_option,
    section,
    table,
)
from lti_tool.operations import ActionError, InvalidInput, audit, provider_by_slug
from lti_tool.operations.achievements import (
    AchievementExists,
    achievement_connection,
    achievement_dict,
    add_achievement,
    edit_achievement,
    find_achievement,
    list_achievements,
    preview,
)
from lti_tool.operations.course_check import skipped_check_warning
from lti_tool.operations.lms import disconnected_badge_warning

POLL_SECONDS = 0.5


def _rule_text(rule: str | None, rule_file) -> str | None:
    if rule is not None and rule_file is not None:
        raise InvalidInput("give the award rule with --rule or --rule-file, not both")
    if rule_file is not None:
        return rule_file.read()
    return rule


def _rule_options(function):
    function = click.option(
        "--rule-file",
        type=click.File("r"),
        help="File with the award rule JSON ('-' reads stdin).",
    )(function)
    return click.option(
        "--rule",
        help='Award rule JSON, e.g. {"version": 1, "rule": {"kind": '
        '"course_completed"}}; see docs/award-rules.md.',
    )(function)


def _skip_lms_check_option(function):
    return click.option(
        "--skip-lms-check",
        is_flag=True,
        help="Save without checking the course and the rule's activity ids in the "
        "LMS, for when the LMS cannot be reached; prints a warning.",
    )(function)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _alignments_option(function):
    return click.option(
        "--alignments",
        help='Skills as a JSON list, e.g. [{"targetName": "First '
        'aid", "targetUrl": "https://...", "targetFramework": "..."}]; "[]" '
        "removes them.",
    )(function)


@click.group()
def achievement() -> None:
    """Add, list, show and edit badges; preview who earns one; backfill."""


@achievement.command("add")
@provider_option()
@click.option(
    "--connection",
    "connection_id",
    required=True,
    help="LMS connection id (see `hpass-bridge lms list`).",
)
@click.option("--course", "course_id", required=True, help="LMS course id.")
@click.option("--name", required=True, help="Badge name (at most 200 characters).")
@click.option("--description", required=True, help="What the badge stands for.")
@click.option("--criteria", required=True, help="Criteria text shown with the badge.")
@_alignments_option
@_rule_options
@_skip_lms_check_option
@click.option(
    "--no-backfill",
    is_flag=True,
    help="Start no backfill (default: queue one for the workers, which "
    "issues the badge to the course's learners who already meet the "
    "rule).",
)
@json_option
def add(
    provider_slug,
    connection_id,
    course_id,
    name,
    description,
    criteria,
    alignments,
    rule,
    rule_file,
    skip_lms_check,
    no_backfill,
    as_json,
):
    """Add a badge to an LMS course with its award rule.

    The course and every activity id in the rule must exist in the LMS; see the
    course's activity ids with `hpass-bridge lms activities`. A backfill is queued
    for the workers unless --no-backfill is given.
    """
    from lti_tool.backfill import BackfillTrigger

    rule = _rule_text(rule, rule_file)
    with operator_session(as_json) as op:
        if rule is None:
            raise InvalidInput(
                "give the award rule with --rule or --rule-file", code="rule_required"
            )
        found = provider_by_slug(op.session, provider_slug)
        try:
            created = add_achievement(
                op.session,
                op.actor,
                found,
                bridge=op.bridge,
                connection_id=connection_id,
                course_id=course_id,
                name=name,
                description=description,
                criteria=criteria,
                rule=rule,
                alignments=alignments,
                skip_lms_check=skip_lms_check,
            )
        except AchievementExists as error:
            if not error.identical:
                raise
            # The same command run again, after a timeout or in a setup script
            # run twice, finds its badge, as `edit` does for an unchanged rule.
            existing = achievement_dict(op.session, error.existing)
            op.session.rollback()
            emit(
                {
                    "status": "unchanged",
                    "achievement": existing,
                    "backfill": None,
                    "warnings": [],
                },
                as_json,
                _unchanged_text(existing["id"]),
            )
            return
        warnings = []
        if skip_lms_check:
            connection = achievement_connection(op.session, created)
            warnings.append(skipped_check_warning(connection, created.lms_course_id))
        job = None
        if not no_backfill:
            job = _start_backfill(
                op, created, BackfillTrigger.ACHIEVEMENT_CREATED, warnings
            )
        op.session.commit()
        result = achievement_dict(op.session, created)
        backfill = _sent_backfill(op, job)
    _warn(warnings)
    emit(
        {
            "status": "created",
            "achievement": result,
            "backfill": backfill,
            "warnings": warnings,
        },
        as_json,
        _add_text(result["id"], backfill),
    )


def _unchanged_text(achievement_id: str) -> str:
    return (
        f"achievement {achievement_id} already exists with these values, so "
        "nothing was added. To change it: hpass-bridge achievement edit "
        f"{achievement_id}"
    )


def _add_text(achievement_id: str, backfill: dict | None) -> str:
    if backfill is None:
        return (
            f"achievement {achievement_id} created. To award it to learners who "
            f"already meet the rule: hpass-bridge achievement backfill "
            f"{achievement_id}"
        )
    return (
        f"achievement {achievement_id} created; backfill {backfill['id']} queued "
        "for the workers, which award it to learners who already meet the rule"
    )


@achievement.command("list")
@provider_option()
@click.option("--course", "course_id", help="Only this LMS course's badges.")
@json_option
def list_(provider_slug, course_id, as_json):
    """List a provider's badges."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        rows = [
            achievement_dict(op.session, item)
            for item in list_achievements(op.session, found, course_id)
        ]
        audit(op.session, op.actor, "achievement.listed", provider_id=found.id)
        op.session.commit()
    emit(
        {"achievements": rows},
        as_json,
        table(rows, ["id", "course_id", "name"], "no achievements"),
    )


@achievement.command("show")
@click.argument("achievement_id")
@json_option
def show(achievement_id, as_json):
    """Show one badge with its award rule."""
    with operator_session(as_json) as op:
        found = find_achievement(op.session, achievement_id)
        result = achievement_dict(op.session, found)
        audit(
            op.session,
            op.actor,
            "achievement.shown",
            provider_id=found.provider_id,
            target=f"achievement:{achievement_id}",
        )
        op.session.commit()
    emit(result, as_json, _achievement_text(result))


@achievement.command("edit")
@click.argument("achievement_id")
@click.option("--name", help="New badge name.")
@click.option("--description", help="New description.")
@click.option("--criteria", help="New criteria text.")
@_alignments_option
@_rule_options
@_skip_lms_check_option
@click.option(
    "--no-backfill",
    is_flag=True,
    help="Start no backfill when the award rule changes (default: queue "
    "one for the workers, which issues the badge to learners who meet "
    "the new rule).",
)
@json_option
def edit(
    achievement_id,
    name,
    description,
    criteria,
    alignments,
    rule,
    rule_file,
    skip_lms_check,
    no_backfill,
    as_json,
):
    """Change a badge's texts or award rule; only the options given change.

    A new rule's activity ids must exist in the badge's LMS course. A changed rule
    queues a backfill for the workers unless --no-backfill is given; credentials
    already issued stay as they are.
    """
    from lti_tool.backfill import BackfillTrigger

    rule = _rule_text(rule, rule_file)
    with operator_session(as_json) as op:
        found = find_achievement(op.session, achievement_id)
        fields = edit_achievement(
            op.session,
            op.actor,
            found,
            bridge=op.bridge,
            name=name,
            description=description,
            criteria=criteria,
            rule=rule,
            alignments=alignments,
            skip_lms_check=skip_lms_check,
        )
        warnings = []
        connection = achievement_connection(op.session, found)
        if skip_lms_check and "award_rule" in fields:
            warnings.append(skipped_check_warning(connection, found.lms_course_id))
        if connection.disconnected:
            warnings.append(disconnected_badge_warning(connection))
        job = None
        if "award_rule" in fields and not no_backfill:
            job = _start_backfill(op, found, BackfillTrigger.RULE_CHANGED, warnings)
        op.session.commit()
        result = achievement_dict(op.session, found)
        backfill = _sent_backfill(op, job)
    _warn(warnings)
    emit(
        {
            "status": "updated" if fields else "unchanged",
            "fields": fields,
            "achievement": result,
            "backfill": backfill,
            "warnings": warnings,
        },
        as_json,
        _edit_text(achievement_id, fields, backfill),
    )


def _start_backfill(op, found, trigger, warnings: list[str]):
    """Add the backfill a new badge or a changed rule calls for; return the job.

    Why none started (a disconnected LMS, for one) goes into `warnings`.
    """
    from lti_tool.operations.backfills import start_automatic_backfill

    job, error = start_automatic_backfill(op.session, op.actor, found, trigger=trigger)
    if error is not None:
        warnings.append(f"no backfill was started: {error.message}")
    return job


def _sent_backfill(op, job) -> dict | None:
    """Send a job added by this command to the workers, after the commit; describe it."""
    from lti_tool.operations.backfills import backfill_dict

    if job is None:
        return None
    if not job.joined:
        _send(op.bridge, job.id)
    return {**backfill_dict(op.session, job), "joined": job.joined}


def _edit_text(achievement_id: str, fields: list[str], backfill: dict | None) -> str:
    if not fields:
        return (
            f"achievement {achievement_id} unchanged: the award rule given "
            "awards like the stored one"
        )
    lines = [f"achievement {achievement_id} updated: {', '.join(fields)}"]
    if backfill is not None and backfill["joined"]:
        lines.append(
            f"the award rule changed; backfill {backfill['id']} of this "
            f"badge is already {backfill['status']} and evaluates the new "
            "rule"
        )
    elif backfill is not None:
        lines.append(
            f"the award rule changed; backfill {backfill['id']} queued for the workers"
        )
    return "\n".join(lines)


@achievement.command("preview")
@click.argument("achievement_id")
@json_option
def preview_command(achievement_id, as_json):
    """List the enrolled learners who would earn the badge now; issues nothing.

    Learners who already hold the badge are listed apart and not counted.
    """
    with operator_session(as_json) as op:
        found = find_achievement(op.session, achievement_id)
        rows = [row.__dict__ for row in preview(op.session, op.bridge, found)]
        audit(
            op.session,
            op.actor,
            "achievement.previewed",
            provider_id=found.provider_id,
            target=f"achievement:{achievement_id}",
        )
        op.session.commit()
    emit(
        {
            "achievement": achievement_id,
            "would_earn": sum(1 for row in rows if row["met"] and not row["holds"]),
            "already_hold": sum(1 for row in rows if row["holds"]),
            "learners": rows,
        },
        as_json,
        _preview_text(achievement_id, rows),
    )


# Width of wrapped description and criteria text, for an 80-column terminal.
TEXT_WIDTH = 76


def _wrapped(text: str | None) -> str:
    if not text:
        return "-"
    paragraphs = text.splitlines() or [""]
    return "\n".join(textwrap.fill(line, TEXT_WIDTH) for line in paragraphs)


def _skill_lines(alignments: list[dict]) -> str:
    if not alignments:
        return "(none)"
    lines = []
    for skill in alignments:
        line = f"- {skill.get('targetName', '?')}  {skill.get('targetUrl', '')}"
        if skill.get("targetFramework"):
            line += f"  ({skill['targetFramework']})"
        lines.append(line.rstrip())
    return "\n".join(lines)


def _achievement_text(result: dict) -> str:
    """Render `achievement show` for a terminal: fields, then one section per text."""
    summary = fields(
        [
            ("id", result["id"]),
            ("LMS connection", result["lms_connection"]),
            ("course", result["course_id"]),
            ("image", result["image_url"]),
            ("created", result["created_at"]),
        ]
    )
    rule = json.dumps(result["award_rule"], indent=2, sort_keys=True)
    blocks = [
        section(f"Badge: {result['name']}", summary),
        section("Description", _wrapped(result["description"])),
        section("Criteria", _wrapped(result["criteria"])),
        section("Skills", _skill_lines(result["alignments"])),
        section("Award rule", rule),
    ]
    return "\n\n".join(blocks)


def _preview_text(achievement_id: str, rows: list[dict]) -> str:
    """Render `achievement preview`: a count, then the learners who would earn the
    badge, those who have it already and those who do not qualify yet."""
    holding = [row for row in rows if row.get("holds")]
    earning = [row for row in rows if row["met"] and not row.get("holds")]
    waiting = [
        {**row, "missing": "; ".join(row["missing"]) or "-"}
        for row in rows
        if not row["met"] and not row.get("holds")
    ]
    blocks = [
        f"{len(earning)} of {len(rows)} enrolled learners would earn it now",
        section(
            f"Would earn it now ({len(earning)})",
            table(earning, ["lms_user_id", "name", "met_at"], "(none)"),
        ),
        section(
            f"Already hold it ({len(holding)})",
            table(holding, ["lms_user_id", "name"], "(none)"),
        ),
        section(
            f"Not yet ({len(waiting)})",
            table(waiting, ["lms_user_id", "name", "missing"], "(none)"),
        ),
    ]
    closing = "Nothing was issued."
    if earning:
        closing += (
            " To award the badge to them, run:\n"
            f"  hpass-bridge achievement backfill {achievement_id}"
        )
    blocks.append(closing)
    return "\n\n".join(blocks)


@achievement.command("backfill")
@click.argument("achievement_id")
@click.option(
    "--queue",
    is_flag=True,
    help="Hand the job to the workers and return at once (default: run "
    "it here and wait).",
)
@json_option
def backfill(achievement_id, queue, as_json):
    """Issue the badge to every enrolled learner who already earned it.

    Safe to run again: learners who hold the badge are counted, not issued twice.
    On a terminal a progress line shows the learners read so far. A backfill of
    the badge that is queued and not yet taken by a worker (such as the one a new
    badge or rule queued) runs here instead of a second one.
    """
    from lti_tool.backfill import BackfillStatus, job_summary
    from lti_tool.operations.backfills import start_achievement_backfill

    with operator_session(as_json) as op:
        found = find_achievement(op.session, achievement_id)
        job = start_achievement_backfill(op.session, op.actor, found)
        op.session.commit()
        job_id, job_public_id = job.id, job.public_id
        run_here = not queue and job.status == BackfillStatus.PENDING.value
        if job.joined and not run_here:
            _emit_joined(job, as_json)
            return
        if queue:
            _send(op.bridge, job_id)
            emit(
                {"status": "queued", "job": job_public_id},
                as_json,
                f"backfill {job_public_id} queued for the workers",
            )
            return
        status = _run_with_progress(op.bridge, job_id, show=not as_json)
        op.session.expire_all()
        from lti_tool.backfill import BackfillJob

        job = op.session.get(BackfillJob, job_id)
        if status == "skipped":
            # A worker took the queued job first, so it runs there.
            job.joined = True
            _emit_joined(job, as_json)
            return
        summary = {
            "job": job_public_id,
            **job_summary(job),
            "last_error": job.last_error,
        }
    emit(
        summary,
        as_json,
        f"backfill {job_public_id} {summary['status']}: {summary['learners_seen']} "
        f"learners read, {summary['issued']} issued, {summary['already_held']} "
        f"already held, {summary['not_met']} not met, "
        f"{summary['failed_reads']} failed reads",
    )
    if status != "done":
        sys.exit(1)


def _emit_joined(job, as_json: bool) -> None:
    """Report the badge's active backfill, which this command did not start."""
    from lti_tool.backfill import job_summary

    summary = {"job": job.public_id, "joined": True, **job_summary(job)}
    emit(
        summary,
        as_json,
        f"backfill {job.public_id} of this badge is already "
        f"{summary['status']}, so no second one was started: "
        f"{summary['learners_seen']} learners read, {summary['issued']} "
        "issued so far",
    )


def _send(bridge, job_id: int) -> None:
    from lti_tool.app import create_app
    from lti_tool.backfill import send_backfill

    app = create_app(bridge.settings)
    with app.app_context():
        send_backfill(job_id)


def _run_with_progress(bridge, job_id: int, show: bool) -> str:
    """Run the job in a thread; on a terminal, redraw a progress line meanwhile."""
    from lti_tool.backfill import BackfillJob, run_job

    outcome: dict = {}

    def work() -> None:
        try:
            outcome["status"] = run_job(bridge, job_id)
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    thread = threading.Thread(target=work, name=f"backfill-{job_id}")
    thread.start()
    interactive = show and sys.stdout.isatty()
    # Moodle's enrolment list has no total, so the bar pulses and counts learners.
    with click.progressbar(
        iter(()), label="learners read", show_pos=True, hidden=not interactive
    ) as bar:
        seen = 0
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            with bridge.session() as session:
                job = session.get(BackfillJob, job_id)
                bar.update(job.learners_seen - seen)
                seen = job.learners_seen
    if "error" in outcome:
        raise ActionError(
            f"the backfill stopped: {outcome['error']}", code="backfill_failed"
        )

    return outcome["status"]
