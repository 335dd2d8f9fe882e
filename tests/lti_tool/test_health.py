from sqlalchemy import create_engine


def test_health_reports_database_and_broker(client):
    """GET /health answers 200 with the version and both dependencies ok."""
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["broker"] == "ok"
    assert response.json["version"]


def test_health_degraded_when_database_unreachable(app, client):
    """A database that fails its probe turns /health into 503 with database error."""
    app.extensions["hpass"].engine = create_engine("sqlite:////nonexistent/dir/x.db")

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json["database"] == "error"
    assert response.json["broker"] == "ok"


def test_oversized_body_names_limit(client):
    """A body over the app's limit gets a 413 page that names the limit."""
    response = client.post(
        "/account/sign-in",
        data=b"x" * (3 * 1024 * 1024),
        content_type="application/x-www-form-urlencoded",
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert "limit of 2 MB" in response.get_json()["message"]
