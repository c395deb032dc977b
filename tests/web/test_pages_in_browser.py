"""The pages in a real browser: a social worker, emergency access, and its IG review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web.conftest import Pages, World

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - playwright is a dev dependency
    expect = None


class TestSignIn:
    def test_a_page_sends_you_to_sign_in_and_back(self, pages: Pages) -> None:
        pages.goto("/web/persons")
        assert "/web/sign-in" in pages.page.url
        pages.page.get_by_label(re.compile(r"\(W81442\)")).check()
        pages.submit(pages.page.get_by_role("button", name="Sign in"))
        assert pages.page.url.endswith("/web/persons")
        expect(pages.page.get_by_test_id("signed-in-as")).to_contain_text("Sarah Hill")

    def test_the_session_cookie_is_http_only_and_strict(self, pages: Pages) -> None:
        pages.sign_in("W81442")
        cookie = next(c for c in pages.page.context.cookies() if c["name"] == "carebridge_session")
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/"
        # Scripts on the page cannot read it.
        assert "carebridge_session" not in pages.page.evaluate("document.cookie")

    def test_sign_out_ends_the_session(self, pages: Pages) -> None:
        pages.sign_in("W81442")
        pages.submit(pages.page.get_by_role("button", name="Sign out"))
        pages.goto("/web/persons")
        assert "/web/sign-in" in pages.page.url

    def test_the_skip_link_is_the_first_thing_to_focus(self, pages: Pages) -> None:
        pages.goto("/web/sign-in")
        pages.page.keyboard.press("Tab")
        focused = pages.page.evaluate("document.activeElement.textContent.trim()")
        assert focused == "Skip to main content"


class TestSocialWorker:
    def test_search_open_a_person_see_health_and_a_withheld_reason(
        self, pages: Pages, world: World
    ) -> None:
        page = pages.page
        pages.sign_in("W81442")
        pages.goto("/web/persons")
        page.get_by_label("Find a person").fill("Baker")
        pages.submit(page.get_by_role("button", name="Search"))
        link = page.get_by_role("link", name="Miss Edna Elizabeth Baker")
        expect(link).to_be_visible()
        pages.submit(link)
        assert page.url.endswith(f"/web/persons/{world.edna}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Miss Edna Elizabeth Baker")
        # A consented community health item, with its source, date and why it is shown.
        stroke = page.get_by_test_id("item").filter(has_text="Cerebrovascular accident")
        expect(stroke.get_by_test_id("item-source")).to_contain_text("Community health")
        expect(stroke).to_contain_text("24 July 2022")
        stroke.get_by_text("Why this is shown").click()
        expect(stroke.get_by_test_id("why")).to_contain_text("consent recorded 8 January 2026")
        # The mental health problem is withheld: the reason is given, never the content.
        withheld = page.get_by_test_id("withheld")
        expect(withheld).to_contain_text("Health: 1 record")
        expect(withheld).to_contain_text("mental health")
        expect(page.locator("main")).not_to_contain_text("anxiety")
        # Alerts come before everything else the view shows.
        headings = page.locator("main h2").all_inner_texts()
        assert headings[0] == "Alerts"

    def test_a_wrong_nhs_number_is_an_error_naming_the_field(self, pages: Pages) -> None:
        pages.sign_in("W81442")
        pages.goto("/web/persons?q=9991656953")
        expect(pages.page.locator("#q-error")).to_be_visible()
        expect(pages.page.locator(".nhsuk-error-summary")).to_contain_text("check digit")

    def test_break_glass_for_a_person_without_relationship(
        self, pages: Pages, world: World
    ) -> None:
        page = pages.page
        pages.sign_in("W81442")
        response = pages.goto(f"/web/persons/{world.unrelated}")
        assert response.status == 403
        expect(page.get_by_test_id("denied-reasons")).to_contain_text("care relationship")
        pages.submit(page.get_by_role("button", name="Ask for emergency access"))
        expect(page.get_by_test_id("break-glass-scope")).to_contain_text("4 hours")
        expect(page.locator(".nhsuk-warning-callout")).to_contain_text(
            "reviewed by information governance"
        )
        # The reason is required.
        pages.submit(page.get_by_role("button", name="Start emergency access"))
        expect(page.locator("#reason-error")).to_be_visible()
        page.get_by_label("Why do you need emergency access?").fill(
            "Found on the floor at home by a neighbour; ambulance crew asking about her"
            " medical history and current care."
        )
        pages.submit(page.get_by_role("button", name="Start emergency access"))
        assert page.url.endswith(f"/web/persons/{world.unrelated}")
        expect(page.get_by_test_id("break-glass-banner")).to_contain_text("Emergency access")
        expect(page.get_by_role("heading", level=1)).to_contain_text(
            world.unrelated_name.split()[-1]
        )

        # An IG officer finds that access in the audit log and accepts it.
        pages.submit(page.get_by_role("button", name="Sign out"))
        pages.sign_in("IG0001")
        pages.goto("/web/audit")
        page.get_by_label("User").fill("W81442")
        page.get_by_label("Action").fill("break-glass")
        pages.submit(page.get_by_role("button", name="Search"))
        rows = page.get_by_test_id("audit-row")
        expect(rows.first).to_contain_text("emergency")
        expect(rows.first).to_contain_text("break-glass")
        pages.goto("/web/audit/break-glass")
        item = page.get_by_test_id("review-item").filter(has_text="Found on the floor")
        expect(item).to_contain_text(world.unrelated)
        pages.submit(item.get_by_role("button", name="Accept"))
        expect(page.get_by_role("status")).to_contain_text("Review recorded")
        pages.goto("/web/audit/break-glass?status=accepted")
        accepted = page.get_by_test_id("review-item").filter(has_text="Found on the floor")
        expect(accepted.get_by_test_id("review-status")).to_contain_text("accepted by IG0001")
        # The review is itself audited.
        pages.goto("/web/audit?user=IG0001&action=break-glass")
        expect(page.get_by_test_id("audit-row").first).to_contain_text("review: accepted")

    def test_a_social_worker_cannot_open_the_audit_log(self, pages: Pages) -> None:
        pages.sign_in("W81442")
        response = pages.goto("/web/audit")
        assert response.status == 403
        expect(pages.page.get_by_test_id("error-detail")).to_contain_text("audit.read")


class TestIgOfficer:
    def test_audit_search_pages_and_exports(self, pages: Pages, world: World) -> None:
        page = pages.page
        pages.sign_in("W81442")
        for _ in range(2):
            pages.goto(f"/web/persons/{world.edna}")
        pages.submit(page.get_by_role("button", name="Sign out"))
        pages.sign_in("IG0001")
        pages.goto(f"/web/audit?person={world.edna}&action=person.read")
        expect(page.get_by_test_id("audit-row").first).to_contain_text("W81442")
        expect(page.get_by_test_id("audit-row").first).to_contain_text("withheld")
        with page.expect_download() as download:
            page.get_by_role("link", name="CSV").click()
        csv_text = Path(download.value.path()).read_text(encoding="utf-8")
        assert world.edna in csv_text
        assert "person.read" in csv_text
        with page.expect_download() as download:
            page.get_by_role("link", name="FHIR AuditEvent bundle").click()
        assert '"AuditEvent"' in Path(download.value.path()).read_text(encoding="utf-8")
        # Paging: older entries exist once there are more than a page of them.
        pages.goto("/web/audit")
        older = page.get_by_role("link", name="Older entries")
        expect(older).to_be_visible()
        first_seq = page.get_by_test_id("audit-row").first.locator("td").first.inner_text()
        pages.submit(older)
        next_seq = page.get_by_test_id("audit-row").first.locator("td").first.inner_text()
        assert int(next_seq) < int(first_seq)

    def test_a_bad_date_names_the_field(self, pages: Pages) -> None:
        pages.sign_in("IG0001")
        response = pages.goto("/web/audit?since=23-11-2026")
        assert response.status == 422
        expect(pages.page.locator("#since-error")).to_contain_text("YYYY-MM-DD")
