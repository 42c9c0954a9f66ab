"""The UI in a real browser: Debian's Chromium driven by Playwright, against a real
server under ``--static-prefix``, seeded through the MLflow client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("playwright")


def run_names(page) -> list[str]:
    return page.locator("#runs tbody tr:not([hidden]) th a").all_inner_texts()


def test_each_link_form_of_the_client_lands(page, seeded):
    s = seeded
    page.goto(f"{s.url}/#/experiments/{s.experiment_id}")
    page.wait_for_url(re.compile(rf"/tracklog/experiments/{s.experiment_id}$"))
    assert page.locator("h1").first.inner_text().startswith("ui-main")

    run_id = s.runs["run-00"]
    page.goto(f"{s.url}/#/experiments/{s.experiment_id}/runs/{run_id}")
    page.wait_for_url(re.compile(rf"/runs/{run_id}$"))
    assert page.locator("h1").inner_text().startswith("run-00")

    page.goto(f"{s.url}/#/models/{s.model}")
    page.wait_for_url(re.compile(rf"/tracklog/models/{s.model}$"))
    assert page.locator("h1").inner_text() == s.model

    page.goto(f"{s.url}/#/models/{s.model}/versions/1")
    page.wait_for_url(re.compile(rf"/models/{s.model}/versions/1$"))
    facts = page.locator("#version-facts").inner_text()
    assert "@champion" in facts
    page.locator("#source-run").click()
    page.wait_for_url(re.compile(rf"/runs/{run_id}$"))

    # Longer forms land on the nearest page; a logged model has its own.
    page.goto(f"{s.url}/#/experiments/{s.experiment_id}/overview")
    page.wait_for_url(re.compile(rf"/tracklog/experiments/{s.experiment_id}$"))
    page.goto(f"{s.url}/#/experiments/{s.experiment_id}/models/{s.logged_model}")
    page.wait_for_url(re.compile(rf"/models/{s.logged_model}$"))
    assert page.locator("h1").inner_text().startswith("tiny-model")
    assert run_id in page.locator("#model-facts").inner_text()


def test_list_and_search_experiments(page, seeded):
    page.goto(seeded.url + "/")
    names = page.locator("#experiments tbody td:nth-child(2) a").all_inner_texts()
    assert {"ui-main", "ui-other", "Default"} <= set(names)
    page.fill("#q", "other")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=other"))
    assert page.locator("#experiments tbody td:nth-child(2) a").all_inner_texts() == ["ui-other"]


def test_create_rename_delete_restore_an_experiment(page, seeded):
    page.goto(seeded.url + "/")
    page.fill("#new-name", "made-in-browser")
    page.click("#create-experiment button")
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    assert page.locator("h1").inner_text().startswith("made-in-browser")
    page.fill("form.add-tag input", "stage=dev")
    page.click("form.add-tag button")
    page.wait_for_selector(".tags .chip:has-text('stage: dev')")

    page.goto(seeded.url + "/?q=made-in")
    page.once("dialog", lambda d: d.accept("renamed-in-browser"))
    page.click("#experiments button[data-action=rename]")
    page.wait_for_selector("text=No experiments match")  # the list reloads, still on "made-in"
    page.goto(seeded.url + "/?q=renamed")
    assert page.locator("#experiments tbody a").first.inner_text() == "renamed-in-browser"
    page.once("dialog", lambda d: d.accept())
    page.click("#experiments button[data-action=delete]")
    page.wait_for_selector("text=No experiments match")
    page.goto(seeded.url + "/?q=renamed&view=DELETED_ONLY")
    page.click("#experiments button[data-action=restore]")
    page.wait_for_selector("text=No experiments match")
    page.goto(seeded.url + "/?q=renamed")
    assert page.locator("#experiments button[data-action=delete]").count() == 1


def test_runs_filter_sort_and_page(page, seeded):
    url = f"{seeded.url}/experiments/{seeded.experiment_id}"
    page.goto(url)
    page.fill("#filter", "params.depth = '1'")
    page.press("#filter", "Enter")
    page.wait_for_url(re.compile(r"filter="))
    names = run_names(page)
    assert sorted(names) == [f"run-{i:02d}" for i in range(1, 30, 4)]

    # Sort by the latest value of a metric, then the other way round.
    page.click("#runs thead a[title='Sort by metrics.acc']")
    page.wait_for_url(re.compile(r"order_by=metrics.acc\+DESC"))
    assert run_names(page) == [f"run-{i:02d}" for i in range(29, 0, -4)]
    page.click("#runs thead a[title='Sort by metrics.acc']")
    page.wait_for_url(re.compile(r"order_by=metrics.acc\+ASC"))
    assert run_names(page) == [f"run-{i:02d}" for i in range(1, 30, 4)]
    assert page.locator("#runs thead th[aria-sort=ascending]").count() == 1

    # Pages of 25 through search_runs' page tokens: 31 runs in all.
    page.goto(url + "?size=25&order_by=attributes.run_name+ASC")
    first = run_names(page)
    page.click("#next-page")
    page.wait_for_url(re.compile(r"page_token="))
    second = run_names(page)
    assert len(first) == 25 and len(second) == 6 and not set(first) & set(second)
    page.click("a[rel=prev]")
    page.wait_for_load_state()
    assert run_names(page) == first


def test_a_bad_filter_shows_the_parsers_message_and_where(page, seeded):
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}")
    page.fill("#filter", "metrics.loss < 1 xyz")
    page.press("#filter", "Enter")
    alert = page.locator("#filter-error")
    alert.wait_for()
    text = alert.inner_text()
    assert "Invalid clause(s) in filter string: 'xyz'" in text
    assert "at character 18" in text


def test_nested_runs_columns_and_delete_restore(page, seeded):
    url = f"{seeded.url}/experiments/{seeded.experiment_id}"
    page.goto(url + "?order_by=attributes.run_name+ASC")
    parent, child = seeded.runs["run-00"], seeded.runs["child-a"]
    child_row = page.locator(f"#runs tr[data-run-id='{child}']")
    assert child_row.get_attribute("data-parent") == parent
    # The child comes right under its parent, whatever the order.
    ids = page.locator("#runs tbody tr").evaluate_all("rs => rs.map(r => r.dataset.runId)")
    assert ids[ids.index(parent) + 1] == child
    page.click(f"#runs tr[data-run-id='{parent}'] button.toggle")
    assert child_row.is_hidden()

    page.click("details.chooser summary")
    page.uncheck("input[name=col][value='params.lr']")
    page.click(".chooser-form button")
    page.wait_for_url(re.compile(r"col="))
    headers = page.locator("#runs thead").inner_text()
    assert "depth" in headers and "lr" not in headers.split()

    page.goto(url)
    page.check(f"#runs tr[data-run-id='{child}'] input[name=run]")
    page.once("dialog", lambda d: d.accept())
    page.click("#delete-selected")
    page.wait_for_selector(f"#runs tr[data-run-id='{child}']", state="detached")
    page.goto(url + "?view=DELETED_ONLY")
    page.check(f"#runs tr[data-run-id='{child}'] input[name=run]")
    page.click("#restore-selected")
    page.wait_for_selector(f"#runs tr[data-run-id='{child}']", state="detached")
    page.goto(url)
    assert page.locator(f"#runs tr[data-run-id='{child}']").count() == 1


def test_run_page_previews_text_image_json_and_csv(page, seeded):
    run_page = f"{seeded.url}/experiments/{seeded.experiment_id}/runs/{seeded.runs['run-00']}"
    page.goto(run_page)
    page.click("#artifact-tree a:text-is('config.json')")
    assert '"layers": [' in page.locator("#preview-text").inner_text()
    page.click("#artifact-tree a:text-is('notes/')")
    page.click("#artifact-tree a:text-is('train.log')")
    assert page.locator("#preview-text").inner_text() == "epoch 1 loss=0.9\nepoch 2 loss=0.5\n"
    page.goto(run_page + "?path=plots")
    page.click("#artifact-tree a:text-is('curve.png')")
    img = page.locator("#preview-image")
    img.wait_for()
    page.wait_for_function("document.getElementById('preview-image').complete")
    assert img.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [4, 3]
    page.goto(run_page)
    page.click("#artifact-tree a:text-is('table.csv')")
    assert page.locator("#preview-table").inner_text().split() == ["a", "b", "1", "x", "2", "y"]
    assert page.locator("#params").inner_text().split()[-2:] == ["lr", "0.001"]
    assert page.locator("#datasets tbody").inner_text().split()[:3] == [
        "train-set", "abc123", "training"]
    assert "tiny-model" in page.locator("#logged-models").inner_text()


def test_download_an_artifact_byte_for_byte(page, seeded, tmp_path: Path):
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}/runs/{seeded.runs['run-00']}"
              "?path=plots&preview=plots/curve.png")
    with page.expect_download() as info:
        page.click("#download")
    target = tmp_path / "curve.png"
    info.value.save_as(target)
    assert target.read_bytes() == seeded.files["plots/curve.png"]


def _series(page, metric: str) -> list[dict]:
    sel = f".plot[data-metric='{metric}'][data-drawn]"
    page.wait_for_selector(sel)
    return page.locator(sel).evaluate(
        "d => d.data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))")


def test_chart_series_read_back_from_the_page(page, seeded):
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}/runs/{seeded.runs['run-01']}")
    [loss] = _series(page, "loss")
    assert loss["name"] == "run-01"
    assert loss["x"] == list(range(20))
    assert loss["y"] == pytest.approx([0.5 + j * 0.01 for j in range(20)])
    page.check("#chart-log")
    page.wait_for_function(
        "document.querySelector(\".plot[data-metric='loss']\").layout.yaxis.type === 'log'")
    page.select_option("#chart-x", "relative")
    page.wait_for_function(
        "document.querySelector(\".plot[data-metric='loss']\").data[0].x[1] === 0.001")


def test_compare_two_runs(page, seeded):
    a, b = seeded.runs["run-01"], seeded.runs["run-02"]
    page.goto(f"{seeded.url}/experiments/{seeded.experiment_id}?order_by=attributes.run_name+ASC")
    page.check(f"#runs tr[data-run-id='{a}'] input[name=run]")
    page.check(f"#runs tr[data-run-id='{b}'] input[name=run]")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r"/compare\?runs="))
    differs = page.locator("#compare tr.differs th").all_inner_texts()
    assert {"depth", "lr", "acc", "loss"} <= {d.split()[0] for d in differs}
    series = _series(page, "loss")
    assert sorted(s["name"] for s in series) == ["run-01", "run-02"]
    page.wait_for_function("document.getElementById('scatter').data")
    assert page.locator("#scatter").evaluate("d => d.data[0].x.length") == 2
