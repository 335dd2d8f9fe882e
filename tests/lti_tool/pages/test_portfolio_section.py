"""The learner page's portfolio section: linking offered only when it helps."""

from __future__ import annotations

import re

from connectors.hpass.models import AccountState, PortfolioAccount, PortfolioClient

from .conftest import launch_as

PORTFOLIO_URL = "https://portfolio.example.org"
API_URL = "https://portfolio.example.org/ims/ob/v3p0"


def add_account(db, tenant, state: AccountState, learner_id=None) -> PortfolioAccount:
    client = PortfolioClient(
        provider_id=tenant.provider_id,
        route="ob3_api",
        portfolio_url=PORTFOLIO_URL,
        name="Example portfolio",
        api_base_url=API_URL,
        authorization_url=PORTFOLIO_URL + "/authorize",
        token_url=PORTFOLIO_URL + "/token",
        scope="credential.upsert",
        client_id="bridge-client",
    )
    db.add(client)
    db.flush()
    account = PortfolioAccount(
        provider_id=tenant.provider_id,
        learner_id=learner_id or tenant.learner_id,
        api_base_url=API_URL,
        client_id=client.id,
        state=state.value,
    )
    db.add(account)
    db.commit()
    return account


def portfolio_section(client, tenant, locale=None) -> str:
    launch_as(client, tenant, "learner", locale=locale)
    page = client.get(f"/course/{tenant.course_id}").get_data(as_text=True)
    return page[page.index('<section class="portfolio-link"') :]


def test_no_portfolio_offers_link_form(client, tenants):
    """Without a linked portfolio the form is shown openly with its explanation."""
    alpha, _ = tenants

    section = portfolio_section(client, alpha)

    assert 'id="portfolio_url"' in section
    assert 'aria-describedby="portfolio_url-hint"' in section
    assert 'id="portfolio_url-hint"' in section
    assert "Until then your badges stay on this page." in section
    assert "<details" not in section
    assert "Unlink" not in section


def test_linked_portfolio_shows_where_badges_go(client, tenants, db):
    """A linked portfolio is shown as the destination, with linking behind a toggle."""
    alpha, _ = tenants
    account = add_account(db, alpha, AccountState.LINKED)

    section = portfolio_section(client, alpha)
    before_details, _, inside_details = section.partition("<details")

    assert "The bridge sends the badges you earn to this portfolio." in before_details
    assert API_URL in before_details
    assert "Linked: new badges go here automatically." in before_details
    assert f"/portfolio/accounts/{account.id}/unlink" in before_details
    assert 'id="portfolio_url"' not in before_details
    assert "<summary>Change portfolio</summary>" in inside_details
    assert 'id="portfolio_url"' in inside_details
    assert "Link again" not in section
    assert "(linked)" not in section


def test_needs_consent_offers_link_again(client, tenants, db):
    """A portfolio that withdrew consent is marked so and offers to link it again."""
    alpha, _ = tenants
    add_account(db, alpha, AccountState.NEEDS_CONSENT)

    section = portfolio_section(client, alpha)
    relink = re.search(
        r'<input type="hidden" name="portfolio_url" value="([^"]+)">\s*'
        r"<button type=\"submit\">Link again",
        section,
    )

    assert "Needs your permission again" in section
    assert relink is not None
    assert relink.group(1) == PORTFOLIO_URL
    assert 'data-state="needs_consent"' in section


def test_unlinked_portfolio_not_listed(client, tenants, db):
    """An unlinked portfolio is gone from the page and the form is offered again."""
    alpha, _ = tenants
    add_account(db, alpha, AccountState.UNLINKED)

    section = portfolio_section(client, alpha)

    assert API_URL not in section
    assert "<details" not in section
    assert 'id="portfolio_url"' in section


def test_other_tenant_portfolio_not_shown(client, tenants, db):
    """Another provider's learner's portfolio never shows on this learner's page."""
    alpha, beta = tenants
    add_account(db, beta, AccountState.LINKED)

    section = portfolio_section(client, alpha)

    assert API_URL not in section
    assert "<details" not in section


def test_portfolio_section_in_arabic(client, tenants, db):
    """The linked state and the change action are translated, inside an rtl page."""
    alpha, _ = tenants
    add_account(db, alpha, AccountState.LINKED)
    launch_as(client, alpha, "learner", locale="ar")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    section = page[page.index('<section class="portfolio-link"') :]

    assert 'dir="rtl"' in page
    assert "Change portfolio" not in section
    assert "Linked: new badges" not in section
    assert f'<span dir="ltr">{API_URL}</span>' in section


def link_portfolio(client, url: str):
    return client.post(
        "/portfolio/link", data={"csrf": "test-csrf", "portfolio_url": url}
    )


def test_link_unreachable_arabic_field_error(client, tenants, caplog):
    """An unreachable portfolio is explained in Arabic beside the address field."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner", locale="ar")
    unreachable = "http://127.0.0.1:9"

    response = link_portfolio(client, unreachable)
    page = response.get_data(as_text=True)
    section = page[page.index('<section class="portfolio-link"') :]

    assert response.status_code == 502
    assert 'id="portfolio_url-error"' in section
    assert "تعذّر الوصول إلى ملف إنجازاتك على هذا العنوان" in section
    assert 'aria-invalid="true"' in section
    assert f'value="{unreachable}"' in section
    assert "OutboundConnectionFailed" not in page
    assert "retrying later" not in page
    assert "portfolio_link_setup_failed" in caplog.text
    assert str(alpha.learner_id) in caplog.text


def test_link_not_a_portfolio_french(client, tenants, moodle_url):
    """An address with a server but no badge API gets a plain French error."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner", locale="fr")

    response = link_portfolio(client, moodle_url)
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "Cette adresse n’accepte pas les badges du pont" in page
    assert "neither the Open Badges 3.0 API" not in page


def test_link_bad_address_spanish(client, tenants):
    """An address that is not a web address is named beside the field in Spanish."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner", locale="es")

    response = link_portfolio(client, "javascript:alert(1)")
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="portfolio_url-error"' in page
    assert "Esto no es una dirección web." in page
    assert "is not an http(s) address" not in page


def test_link_error_opens_change_form(client, tenants, db):
    """With a portfolio linked, a failed change opens the form to show its error."""
    alpha, _ = tenants
    add_account(db, alpha, AccountState.LINKED)
    launch_as(client, alpha, "learner")

    page = link_portfolio(client, "javascript:alert(1)").get_data(as_text=True)

    assert '<details class="portfolio-change" open>' in page
    assert "This is not a web address." in page
