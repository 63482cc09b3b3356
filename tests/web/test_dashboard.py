"""The dashboard in a real Chromium: sign in, the map with every site, the jobs table's
filters, a job's reasons, a state change arriving live, and what a tenant cannot see.
Screenshots go to ``out/browser/`` (``COMPUTENET_TEST_ARTIFACTS``)."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.beds.dashboard import ADMIN, drawn_fraction
from tests.web.conftest import Dashboard

from computenet.catalog import load_network
from computenet.store.repository import Repository, open_engine

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def wait_map(page: object) -> None:
    page.wait_for_selector('#map[data-drawn="1"]', timeout=20_000)  # type: ignore[attr-defined]


def test_wrong_token_is_refused_on_the_sign_in_page(dashboard: Dashboard) -> None:
    page = dashboard.page()
    page.goto(dashboard.url)
    page.fill("#token", "cn_not_a_token")
    page.click("#signin-button")
    page.wait_for_function("document.querySelector('#signin-error').textContent.length > 0")
    assert "Unknown or revoked token" in page.text_content("#signin-error")
    assert page.is_hidden("#app")
    page.context.close()


def test_sign_in_shows_the_map_with_every_site(dashboard: Dashboard) -> None:
    page = dashboard.page(ADMIN)
    wait_map(page)
    sites = {s.id for s in load_network("china").sites}
    assert page.get_attribute("#map", "data-sites") == str(len(sites)) == "19"
    assert page.get_attribute("#map", "data-map") == "china"
    shown = set(
        page.eval_on_selector_all("#site-table tbody tr", "rs => rs.map(r => r.dataset.site)")
    )
    assert shown == sites
    # Every site is a drawn point of the map's scatter series.
    points = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('map')).getOption()"
        ".series.find(s => s.name === 'sites').data.map(d => d.name)"
    )
    assert set(points) == sites
    page.wait_for_timeout(300)
    shot = page.locator("#map").screenshot(path=str(dashboard.artifacts / "map.png"))
    # A drawn map of China's provinces with 19 coloured sites, not an empty canvas.
    assert drawn_fraction(shot) > 0.05
    page.screenshot(path=str(dashboard.artifacts / "dashboard.png"))
    # The slider moves the map to another hour.
    page.fill("#hour", "30")
    page.dispatch_event("#hour", "input")
    assert page.text_content("#hour-label").startswith("+30 h")
    assert page.errors == []
    page.context.close()


def test_filter_jobs(dashboard: Dashboard) -> None:
    page = dashboard.page(ADMIN)
    page.goto(dashboard.url + "#/jobs")
    page.wait_for_selector('#jobs-table[data-ready="1"]')
    total = len(dashboard.seeded.jobs["acme"]) + len(dashboard.seeded.jobs["globex"])
    assert page.get_attribute("#jobs-table", "data-total") == str(total)
    page.select_option("#f-tenant", dashboard.seeded.tenant_ids["globex"])
    page.wait_for_selector(
        f'#jobs-table[data-ready="1"][data-total="{len(dashboard.seeded.jobs["globex"])}"]'
    )
    tenants = page.eval_on_selector_all(
        "#jobs-table tbody tr td:nth-child(3)", "tds => tds.map(t => t.textContent)"
    )
    assert tenants and set(tenants) == {"globex"}
    page.fill("#f-q", "globex-train-00003")
    page.wait_for_selector('#jobs-table[data-ready="1"][data-total="1"]')
    assert "globex-train-00003" in page.text_content("#jobs-table tbody")
    page.select_option("#f-state", "cancelled")
    page.wait_for_selector('#jobs-table[data-ready="1"][data-total="0"]')
    assert page.text_content("#jobs-info") == "no jobs match"
    page.screenshot(path=str(dashboard.artifacts / "jobs.png"))
    page.context.close()


def test_open_a_job_and_read_its_reasons(dashboard: Dashboard) -> None:
    page = dashboard.page(ADMIN)
    page.goto(dashboard.url + "#/jobs?q=acme-train-00000")
    page.wait_for_selector('#jobs-table[data-ready="1"][data-total="1"]')
    page.click("#jobs-table tbody tr")
    page.wait_for_selector("#reasons li")
    reasons = page.text_content("#reasons")
    # The engine's own explanation: the policy, the site and the objective it weighed.
    site = page.text_content("#job-site").split(" ")[0]
    assert re.search(rf"greedy: .*{re.escape(site)}.*objective", reasons), reasons
    # ... as stored with the job: the engine's reason codes, the same the API and CLI show.
    from computenet.engine.reasons import Code

    shown = page.locator("#reasons li .code").all_text_contents()
    assert shown and set(shown) <= {c.value for c in Code}, shown
    assert "cost" in page.text_content("#breakdown")
    assert page.locator("#alternatives tbody tr").count() >= 1
    # acme-train-00000 reads the tenant's personal dataset: its rule is on the page.
    rules = page.text_content("#data-rules")
    assert "personal" in rules and "PIPL" in rules
    assert "job.submit" in page.text_content("#timeline")
    page.wait_for_selector("#timeline-chart canvas")  # waits and runs on one time axis
    # The one place that reads reasons also takes the engine's coded reasons when a job
    # carries them (decision reasons apart from the rejected alternatives').
    coded = page.evaluate(
        """() => {
          const job = {reasons: [
              {code: "cost", role: "placed", message: "cheapest", site_id: "guian"},
              {code: "data_rule", role: "rejected", message: "may not leave", site_id: "hk"}],
            explanation: {breakdown: {objective_cny: 10},
              alternatives: [{site_id: "hk", start_s: 1, objective_cny: null, reason: "x"}]}};
          return [cnReasons.decision(job), cnReasons.alternatives(job)];
        }"""
    )
    assert [(r["code"], r["message"]) for r in coded[0]] == [("cost", "cheapest")]
    assert (coded[1][0]["code"], coded[1][0]["message"]) == ("data_rule", "may not leave")
    page.screenshot(path=str(dashboard.artifacts / "job.png"), full_page=True)
    page.context.close()


def test_a_job_changes_state_live(dashboard: Dashboard) -> None:
    job_id = dashboard.seeded.jobs["acme"][-1]
    page = dashboard.page(dashboard.seeded.tokens["acme"])
    page.goto(f"{dashboard.url}#/jobs/{job_id}")
    page.wait_for_selector("#job[data-state='placed']")
    repo = Repository(open_engine(dashboard.seeded.db_url))
    try:
        assert repo.transition(job_id, "running")  # what the loop does when the job starts
    finally:
        repo.engine.dispose()
    # No reload: the page's poller sees the change and redraws the job.
    page.wait_for_selector("#job[data-state='running']", timeout=10_000)
    assert page.text_content("#job-state") == "running"
    assert "placed → running" in page.text_content("#timeline")
    page.context.close()


def test_a_tenant_cannot_see_another_tenants_job(dashboard: Dashboard) -> None:
    seeded = dashboard.seeded
    theirs = seeded.jobs["globex"][0]
    page = dashboard.page(seeded.tokens["acme"])
    page.goto(dashboard.url + "#/jobs")
    page.wait_for_selector('#jobs-table[data-ready="1"]')
    assert page.get_attribute("#jobs-table", "data-total") == str(len(seeded.jobs["acme"]))
    assert "globex" not in page.text_content("#jobs-table")
    assert page.locator("#f-tenant").count() == 0  # no tenant filter for a tenant
    page.wait_for_selector("#datasets")  # its own datasets, and only those
    assert page.text_content("#datasets tbody").count("acme-records") == 1
    assert "globex" not in page.text_content("#datasets")
    page.goto(f"{dashboard.url}#/jobs/{theirs}")
    page.wait_for_selector(".view .error")
    assert f"no job '{theirs}'" in page.text_content(".view .error")
    # The same at the API, with the same token.
    token = {"Authorization": f"Bearer {seeded.tokens['acme']}"}
    for path in (f"/web/api/jobs/{theirs}", f"/v1/jobs/{theirs}"):
        assert httpx.get(dashboard.url.rstrip("/") + path, headers=token).status_code == 404
    page.context.close()


def test_a_provider_sees_its_own_sites(dashboard: Dashboard) -> None:
    page = dashboard.page(dashboard.seeded.tokens["gridco"])
    wait_map(page)
    assert page.get_attribute("#map", "data-sites") == str(len(dashboard.seeded.provider_sites))
    shown = page.eval_on_selector_all("#site-table tbody tr", "rs => rs.map(r => r.dataset.site)")
    assert sorted(shown) == sorted(dashboard.seeded.provider_sites)
    page.goto(dashboard.url + "#/sites")
    page.wait_for_selector("#sites-table")
    assert page.locator("#sites-table tbody tr").count() == len(dashboard.seeded.provider_sites)
    page.context.close()


def test_sites_and_totals_pages_draw(dashboard: Dashboard) -> None:
    page = dashboard.page(ADMIN)
    page.goto(dashboard.url + "#/sites/guian")
    page.wait_for_selector("#site-chart canvas")
    page.goto(dashboard.url + "#/totals")
    page.wait_for_selector("#audit tbody tr")
    assert "CNY" in page.text_content("#totals-sum")
    page.fill("#audit-q", "tenant.create")
    page.wait_for_function(
        "[...document.querySelectorAll('#audit tbody tr td:nth-child(3)')]"
        ".every(td => td.textContent === 'tenant.create')"
    )
    assert page.errors == []
    page.screenshot(path=str(dashboard.artifacts / "totals.png"), full_page=True)
    page.context.close()
