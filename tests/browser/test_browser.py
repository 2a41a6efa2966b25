"""The web app and the report in real Chromium: numbers, graph, path, CSV, XSS, offline, speed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import Page

from report_case import XSS


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("%", "").strip())


def _load_ms(page: Page) -> float:
    """Navigation start to the end of the load event, from the browser's own timing."""
    return float(page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return n.loadEventEnd - n.startTime; }"))


def _page_breakdown(page: Page) -> dict[str, tuple[float, float]]:
    rows = page.locator("table.breakdown tbody tr")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        out[row.get_attribute("data-bucket")] = (
            _num(row.locator(".bd-amount").inner_text()),
            _num(row.locator(".bd-share").inner_text()))
    return out


def test_breakdown_on_the_page_equals_the_api(site: dict, page: Page, artifacts: Path) -> None:
    api = site["api"].get("/api/cases/demo/summary").json()
    page.goto(site["base"] + "/cases/demo")
    shown = _page_breakdown(page)
    assert set(shown) == {b["bucket"] for b in api["buckets"]}
    for b in api["buckets"]:
        assert shown[b["bucket"]] == (b["amount"], b["share"]), b["bucket"]
    assert _num(page.locator("#stolen").inner_text()) == api["stolen"]
    assert _num(page.locator("#accounted").inner_text()) == api["accounted"]
    page.screenshot(path=str(artifacts / "case-page.png"), full_page=True)


def test_tables_sort_and_search(site: dict, page: Page) -> None:
    page.goto(site["base"] + "/cases/demo")
    table = page.locator("#freeze-table")
    table.locator("thead th", has_text="hops").click()
    hops = [int(x) for x in table.locator("tbody tr td:nth-child(10)").all_inner_texts()]
    assert hops == sorted(hops)
    page.fill("input[data-table=freeze-table]", "kraken")
    visible = table.locator("tbody tr:visible")
    assert 0 < visible.count() < table.locator("tbody tr").count()
    assert all("Kraken" in t for t in visible.locator("td.entity").all_inner_texts())


def test_xss_label_renders_as_text(site: dict, page: Page, artifacts: Path) -> None:
    deposit = site["demo"]["xss_deposits"][0]
    for url in ["/cases/demo", f"/addresses/{deposit}?case=demo", "/cases/demo/graph"]:
        page.goto(site["base"] + url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("() => document.querySelectorAll('img').length") == 0, url
    page.goto(site["base"] + "/cases/demo")
    cells = page.locator("td.entity", has_text=XSS)
    assert cells.count() >= 1 and cells.first.inner_text() == XSS
    page.goto(site["base"] + f"/addresses/{deposit}?case=demo")
    assert page.locator("#labels td.entity").first.inner_text() == XSS
    assert page.dialogs == []  # type: ignore[attr-defined]
    page.screenshot(path=str(artifacts / "address-page.png"), full_page=True)


def test_expand_a_node_in_the_graph(site: dict, page: Page, artifacts: Path) -> None:
    page.goto(site["base"] + "/cases/demo/graph")
    page.wait_for_selector("#cy[data-ready='1']")
    before = page.evaluate("() => heistGraph.cy.nodes().length")
    target = page.evaluate("""() => {
        const n = heistGraph.cy.nodes('[kind = "group"][members > 1]')
            .max(x => x.data('members')).ele;
        const p = n.renderedPosition();
        const r = document.getElementById('cy').getBoundingClientRect();
        return {group: n.data('group'), members: n.data('members'),
                x: r.left + p.x, y: r.top + p.y};
    }""")
    page.mouse.click(target["x"], target["y"])
    page.wait_for_function(f"() => heistGraph.cy.nodes().length > {before}"
                           " && document.getElementById('cy').dataset.ready === '1'")
    shown = page.evaluate(
        "g => heistGraph.cy.nodes().filter(n => n.data('group') === g && "
        "n.data('kind') === 'address').length", target["group"])
    assert shown == min(target["members"], 60)
    page.screenshot(path=str(artifacts / "graph-expanded.png"))


def test_follow_the_path_to_a_deposit_address(site: dict, page: Page, artifacts: Path) -> None:
    deposit = site["demo"]["xss_deposits"][0]
    api = site["api"].get("/api/cases/demo/paths",
                          params={"address": deposit, "limit": 1}).json()["paths"][0]
    page.goto(site["base"] + "/cases/demo")
    page.locator(f"tr[data-address='{deposit}'] a.path-link").first.click()
    page.wait_for_url("**/cases/demo/graph?path=*")
    page.wait_for_function("() => heistGraph.cy.$('node.hl').length > 0")
    nodes = page.evaluate("() => heistGraph.cy.$('node.hl').map(n => n.data('address'))")
    edges = page.evaluate("() => heistGraph.cy.$('edge.hl').length")
    assert sorted(nodes) == sorted(api["addresses"])
    assert edges == api["hops"]
    assert page.locator("#path-list li").count() == api["hops"]
    page.screenshot(path=str(artifacts / "graph-path.png"))


def test_csv_download_equals_the_api(site: dict, page: Page, tmp_path: Path) -> None:
    page.goto(site["base"] + "/cases/demo")
    with page.expect_download() as info:
        page.click("#freeze-csv")
    saved = tmp_path / "freeze.csv"
    info.value.save_as(saved)
    text = saved.read_text()
    assert text == site["api"].get("/api/cases/demo/freeze-list", params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    api = site["api"].get("/api/cases/demo/freeze-list").json()
    assert [(r["address"], float(r["origin_amount"])) for r in rows] == [
        (r["address"], r["origin_amount"]) for r in api]
    shown = page.locator("#freeze-table tbody tr").count()
    assert shown == len(rows)


def test_report_file_offline_shows_the_same_numbers(site: dict, browser, artifacts: Path) -> None:
    context = browser.new_context(offline=True)
    tried: list[str] = []

    def guard(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            tried.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site["report"].as_uri())
    api = site["api"].get("/api/cases/demo/summary").json()
    shown = _page_breakdown(page)
    for b in api["buckets"]:
        assert shown[b["bucket"]] == (b["amount"], b["share"]), b["bucket"]
    assert page.locator("svg.sankey path").count() > 5
    assert page.locator("#freeze-table tbody tr").count() == len(
        site["api"].get("/api/cases/demo/freeze-list").json())
    # the table script works offline too
    page.fill("input[data-table=dormant-table]", "no-such-address")
    assert page.locator("#dormant-table tbody tr:visible").count() == 0
    assert tried == [] and errors == []
    page.screenshot(path=str(artifacts / "report-offline.png"), full_page=True)
    context.close()


def _visit(page: Page, url: str, graph: bool) -> tuple[float, float]:
    """(load event ms, ready ms): for the graph page, ready is when the graph is drawn."""
    page.goto(url)
    load = _load_ms(page)
    if not graph:
        return load, load
    page.wait_for_selector("#cy[data-ready='1']")
    return load, float(page.evaluate("() => performance.now()"))


def test_pages_load_and_their_times_are_recorded(site: dict, page: Page) -> None:
    """Each page five times (the first visit may also fill the server's per-case cache); every
    visit is printed as a `page_load` line. For the graph page the time is until the graph is
    drawn, not only the load event. Speed is a measured figure (target: under a second), not a
    pass/fail threshold: a shared CI machine must not turn load into a red test."""
    deposit = site["demo"]["xss_deposits"][0]
    pages = {"cases": "/", "case": "/cases/demo", "graph": "/cases/demo/graph",
             "address": f"/addresses/{deposit}?case=demo"}
    for name, url in pages.items():
        visits = [_visit(page, site["base"] + url, name == "graph") for _ in range(5)]
        best = min(v[1] for v in visits)
        print(f"page_load case=demo page={name} "
              f"load_ms={','.join(f'{v[0]:.0f}' for v in visits)} "
              f"ready_ms={','.join(f'{v[1]:.0f}' for v in visits)} best_ms={best:.0f}")
        assert best > 0, (name, visits)
    for name, url in {"case": "/cases/scale", "graph": "/cases/scale/graph"}.items():
        load, ready = _visit(page, site["base"] + url, name == "graph")
        print(f"page_load case=scale edges={site['scale']['edges']} page={name} "
              f"load_ms={load:.0f} ready_ms={ready:.0f}")
