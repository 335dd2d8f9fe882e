"""`hpass-bridge demo`: the whole path from launch to a verified badge, without a browser."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click
import requests
from sqlalchemy import select

from badge_engine.archive import build_archive
from badge_engine.models import Credential
from badge_engine.verify import verify_open_badge_credential
from connectors.hpass.models import Delivery, DeliveryStatus
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.demo.stack import DemoStack, wait_for

DELIVERY_TIMEOUT_SECONDS = 90
# The worker's time to stop after the demo, before it is killed. Its work is done and
# its instance folder is deleted next, so the demo does not wait for Celery's warm
# shutdown, which took about 5 s in a run with the SQLite broker.
WORKER_STOP_GRACE_SECONDS = 1.0


class DemoFailed(RuntimeError):
    pass


def _delivered(stack: DemoStack) -> Delivery | None:
    with stack.bridge.session() as session:
        return session.scalar(
            select(Delivery).where(Delivery.status == DeliveryStatus.DELIVERED.value)
        )


def _launch(stack: DemoStack, who: str, expected_text: str) -> None:
    with requests.Session() as browser:
        response = stack.peers.platform.launch_with_session(browser, who)
    if response.status_code != 200 or expected_text not in response.text:
        raise DemoFailed(
            f"the {who} launch ended with HTTP {response.status_code}; "
            f"expected a page containing {expected_text!r}"
        )


def _run_steps(stack: DemoStack, out_dir: Path | None, say) -> dict:
    say(f"bridge, LTI platform, Moodle and portfolio are up at {stack.base_url}")
    stack.start_worker()
    say("Celery worker started")

    _launch(stack, "instructor", "Humanitarian Action Essentials")
    say("instructor launched the tool and sees the course badge")
    _launch(stack, "learner", "Not earned yet")
    say("learner launched the tool: badge not earned yet")

    event = stack.peers.moodle.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    delivery = (
        stack.peers.moodle.deliveries[-1] if stack.peers.moodle.deliveries else None
    )
    if event is None or delivery is None or delivery.status_code not in (200, 202):
        raise DemoFailed(
            f"the Moodle course_completed webhook was not accepted: {delivery}"
        )
    say(
        f"Moodle marked the course complete and sent course_completed ({delivery.status_code})"
    )

    if wait_for(lambda: _delivered(stack), DELIVERY_TIMEOUT_SECONDS) is None:
        raise DemoFailed(
            f"the badge did not reach the portfolio within {DELIVERY_TIMEOUT_SECONDS} s; "
            "see the worker log:\n" + stack.logs()
        )
    received = stack.peers.portfolio.credentials()
    if len(received) != 1:
        raise DemoFailed(
            f"the portfolio contains {len(received)} credentials, expected 1"
        )
    credential = received[0]
    say(f"portfolio received credential {credential['id']}")

    did_url = f"{stack.base_url}/providers/demo-academy/did.json"
    did_document = requests.get(did_url, timeout=10).json()
    result = verify_open_badge_credential(credential, lambda did: did_document)
    say(f"verification: {'verified' if result.verified else 'FAILED'}")
    for line in result.checks:
        say(f"  ok   {line}")
    for line in result.errors:
        say(f"  fail {line}")

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "credential.json").write_text(json.dumps(credential, indent=2))
        (out_dir / "did.json").write_text(json.dumps(did_document, indent=2))
        archive_path = out_dir / "archive.json"
        archive_path.write_text(json.dumps(_archive(stack, credential), indent=2))
        say(
            f"wrote {out_dir / 'credential.json'}, {out_dir / 'did.json'} and "
            f"{archive_path}; verify offline with: hpass-bridge verify {archive_path}"
        )

    return {
        "credential_id": credential["id"],
        "issuer": credential["issuer"]["id"],
        "verified": result.verified,
        "checks": result.checks,
        "errors": result.errors,
    }


def _archive(stack: DemoStack, credential: dict) -> dict:
    """Build the credential's offline archive, which verifies without the demo."""
    public_id = credential["id"].rstrip("/").rsplit("/", 1)[-1]
    with stack.bridge.session() as session:
        record = session.scalar(
            select(Credential).where(Credential.public_id == public_id)
        )
        return build_archive(
            session,
            vault=stack.bridge.vault,
            base_url=stack.base_url,
            credential=record,
        )


def run_headless_demo(out_dir: str | None, as_json: bool) -> int:
    """Run the demo; return the process exit code (0 only for a verified delivery)."""

    def say(line: str) -> None:
        click.echo(line, err=as_json)

    with tempfile.TemporaryDirectory(prefix="hpass-demo-") as instance:
        stack = DemoStack(Path(instance))
        try:
            stack.start_web()
            summary = _run_steps(stack, Path(out_dir) if out_dir else None, say)
        except DemoFailed as error:
            if as_json:
                click.echo(json.dumps({"error": "demo_failed", "message": str(error)}))
            click.echo(f"error: {error}", err=True)
            return 1
        finally:
            stack.stop(grace_seconds=WORKER_STOP_GRACE_SECONDS)

    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"credential id: {summary['credential_id']}")
        click.echo(f"verified: {summary['verified']}")
    return 0 if summary["verified"] else 1


if __name__ == "__main__":
    sys.exit(run_headless_demo(None, False))
