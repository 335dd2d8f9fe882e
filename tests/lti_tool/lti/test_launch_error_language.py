"""LTI login and launch error pages in the browser's language, over real HTTP."""

from __future__ import annotations

import html
import logging

import pytest


def _login_without_parameters(tool, language: str):
    return tool.http.get(
        f"{tool.tool_url}/lti/{tool.public_id}/login",
        headers={"Accept": "text/html", "Accept-Language": language},
        allow_redirects=False,
        timeout=10,
    )


def test_login_without_parameters_names_missing(tool):
    """A login with no iss or client_id names both as missing, not as None."""
    response = _login_without_parameters(tool, "en")
    page = html.unescape(response.text)

    assert response.status_code == 400
    assert "sent no issuer and no client_id" in page
    assert "None" not in page
    assert "This tool link belongs to another LMS registration." in page


SUMMARY = {
    "fr": "Ce lien d'outil appartient à un autre enregistrement LMS.",
    "es": "Este enlace de herramienta pertenece a otro registro del LMS.",
    "ar": "ينتمي رابط الأداة هذا إلى تسجيل آخر في نظام إدارة التعلّم.",
}


@pytest.mark.parametrize("language", sorted(SUMMARY))
def test_login_error_translated(tool, language):
    """The login error summary is translated, but the detail stays in English."""
    response = _login_without_parameters(tool, language)
    page = html.unescape(response.text)

    assert response.status_code == 400
    assert f'<html lang="{language}"' in page
    assert SUMMARY[language] in page
    assert '<span lang="en" dir="ltr">' in page
    assert "What to check:" in page


def test_arabic_launch_error_right_to_left(tool):
    """An Arabic launch error page is laid out right to left."""
    page = _login_without_parameters(tool, "ar").text

    assert '<html lang="ar" dir="rtl">' in page


def test_malformed_launch_translated_french(tool):
    """A launch whose id_token is no JWT gets the French summary of that error."""
    response = tool.http.post(
        f"{tool.tool_url}/lti/{tool.public_id}/launch",
        data={"id_token": "a.b.c", "state": "unknown-state"},
        headers={"Accept": "text/html", "Accept-Language": "fr"},
        allow_redirects=False,
        timeout=10,
    )
    page = html.unescape(response.text)

    assert response.status_code == 400
    assert (
        "Le LMS a envoyé une demande de lancement que l'outil ne peut pas lire." in page
    )


def test_login_error_logged_in_english(tool, caplog):
    """The log line of a French login error stays in English."""
    caplog.set_level(logging.INFO)

    _login_without_parameters(tool, "fr")

    reasons = [
        record.msg.get("reason", "")
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "request_rejected"
    ]
    assert reasons
    assert "sent no issuer and no client_id" in reasons[-1]
