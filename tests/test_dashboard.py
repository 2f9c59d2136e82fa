"""`ddp-lane-bench publish`: the static dashboard of a storage, opened in a real headless Chromium (Debian's
chromium and chromium-driver): every saved run listed, the change point at the first slow run, every image
loaded, no console error; and bad input refused before anything is written."""
import json
import math
import os
import random
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lanemodel.analysis.curve import points_from_json
from lanemodel.analysis.history import load_runs
from lanemodel.console import main
from lanemodel.outputs.dashboard_charts import Curve, speedup_chart
from lanemodel.outputs.dashboard_index import index_html, machine_histories
from lanemodel.outputs.dashboard_page import run_row, run_title

SAVED_RUN = Path(__file__).parent / "data" / "saved_run.json"      # a real run of the suite, with its report
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FACTORS = [1.0] * 5 + [1.25] * 3     # the last 3 runs 25 % slower: the change point is at run 6 (8 runs: a
# permutation test of a shift needs that many to reach p < 0.05)


def commit_of(i: int) -> str:
    """A commit id per saved run whose short form differs too."""
    return (f"{i:x}c0ffee" * 6)[:40]


def write_history(storage: Path, factors: list[float], seed: int = 0) -> list[str]:
    """Saved runs made from the real one: each launch's steps redrawn around its world size's median, every
    run drifting by 1 % and its launches by 1 %, the step times of run i scaled by factors[i]."""
    real = json.loads(SAVED_RUN.read_text())
    rng = random.Random(seed)
    folder = storage / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, factor in enumerate(factors):
        data = json.loads(json.dumps(real))
        drift = factor * math.exp(0.01 * rng.gauss(0, 1))
        for bench in data["benchmarks"]:
            info = bench["extra_info"]
            info["step_times"] = [[info["median_step_time"] * drift * math.exp(0.01 * rng.gauss(0, 1))] * 4
                                  for _ in range(6)]
        data["commit_info"]["id"] = commit_of(i)
        names.append(f"{i + 1:04d}_main")
        (folder / f"{names[-1]}.json").write_text(json.dumps(data))
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    names = write_history(tmp / "storage", FACTORS)
    assert main(["publish", "--storage", str(tmp / "storage"), "--out", str(tmp / "site")]) == 0
    return tmp / "site", names


def test_the_site_lists_every_run_and_the_change_point_at_the_first_slow_run(site):
    out, names = site
    found = json.loads((out / "site.json").read_text())
    assert found["runs"] == names and set(found["change_points"]) == {"0006_main"}
    assert found["machines"] == {"AMD EPYC, 2 cores": names}
    assert {p.name for p in (out / "runs").glob("*.html")} == {f"{name}.html" for name in names}


def test_each_machine_has_its_own_history_so_a_slower_machine_is_no_change_point(tmp_path):
    names = write_history(tmp_path / "storage", [1.0] * 5 + [1.3] * 3)
    for name in names[5:]:                  # the slower runs were made on another machine
        path = tmp_path / "storage" / "Linux-CPython-3.11-64bit" / f"{name}.json"
        data = json.loads(path.read_text())
        data["machine_info"]["cpu"]["brand_raw"] = data["scaling"]["config"]["cpu_model"] = "Intel Xeon"
        path.write_text(json.dumps(data))
    runs, _ = load_runs(tmp_path / "storage")
    histories = machine_histories(runs)        # what publish draws, without redrawing every run's plots
    assert [(h.machine, [run.run_id for run in h.runs]) for h in histories] == [
        ("Intel Xeon, 2 cores", names[5:]), ("AMD EPYC, 2 cores", names[:5])]         # the newest run's first
    assert not any(h.changes for h in histories)
    index = index_html([run_row(run) for run in runs], histories, [])
    assert index.index("History on Intel Xeon, 2 cores") < index.index("History on AMD EPYC, 2 cores")


@pytest.mark.parametrize(("run_id", "title"), [
    ("0012_main", "main #12"),
    ("0003_" + "ab12" * 10 + "_20261203_061130_uncommitted-changes", "run #3"),
    ("0004_ref-3159372abc12", "ref-3159372abc12 #4"),
    ("not-numbered", "not-numbered"),
])
def test_a_run_is_titled_by_its_name_and_number_not_its_file_stem(run_id, title):
    assert run_title(run_id) == title


def _ceiling_and_ideal(cores: int) -> tuple[list[tuple[float, float]], str]:
    points = points_from_json(json.loads(SAVED_RUN.read_text())["scaling"]["analysis"]["tuned"]["curve"])
    four = [replace(p, world_size=n) for p, n in zip(points * 2, (1, 2, 4, 8))]
    svg = speedup_chart([Curve("tuned", four, 1)], cores, "about")
    ceiling = re.search(r'<polyline class="ceiling"[^>]* points="([^"]*)"', svg).group(1)
    return [tuple(map(float, xy.split(","))) for xy in ceiling.split()], svg


def test_the_speedup_chart_draws_the_cores_ceiling_flat_past_the_cores_and_cuts_the_ideal_line():
    ceiling, svg = _ceiling_and_ideal(cores=2)
    ys = [y for _, y in ceiling]
    assert len(ys) == 4 and ys[0] > ys[1] and ys[1] == ys[2] == ys[3]     # 1x, then 2x from N = 2 on
    assert re.search(r'<polyline class="ideal"[^>]*clip-path="url\(#speedup-clip\)"', svg)
    assert "ceiling on 2 cores" in svg
    ys = [y for _, y in _ceiling_and_ideal(cores=8)[0]]
    assert ys[0] > ys[1] > ys[2] > ys[3]                                 # 8 cores: no cap up to N = 8


def _viewport_browser(width: int, height: int):
    """Headless Chromium whose page area is exactly ``width`` x ``height`` (a window's size includes its frame)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    driver.set_page_load_timeout(60)
    return driver


def _box(driver, element) -> dict:
    return driver.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                 "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, "
                                 "width: r.width, height: r.height}", element)


def _on_first_screen(driver, element) -> bool:
    box = _box(driver, element)
    return box["height"] > 0 and box["top"] >= 0 and box["bottom"] <= 800 and box["right"] <= 1280


def _check_first_screen(driver, names):
    from selenium.webdriver.common.by import By

    curve = json.loads(SAVED_RUN.read_text())["scaling"]["analysis"]["tuned"]
    chart = driver.find_element(By.CSS_SELECTOR, "#latest-speedup svg")
    assert _on_first_screen(driver, chart)
    dots = chart.find_elements(By.CSS_SELECTOR, "circle.dot")
    assert [int(d.get_attribute("data-world-size")) for d in dots] == [p["world_size"] for p in curve["curve"]]
    assert chart.find_elements(By.CSS_SELECTOR, "polyline.measured") and chart.find_elements(
        By.CSS_SELECTOR, "polyline.ceiling")
    assert "main #8" in dots[-1].find_element(By.TAG_NAME, "title").get_attribute("textContent")
    fastest = driver.find_element(By.ID, "fastest")
    assert _on_first_screen(driver, fastest)
    assert fastest.get_attribute("data-world-size") == str(curve["fastest_world_size"])
    assert f"{curve['fastest_world_size']} process" in fastest.text
    verdicts = driver.find_element(By.ID, "verdicts")
    assert _on_first_screen(driver, verdicts)
    assert "not gated" in verdicts.text and "since main #6" in verdicts.text


def _check_small_multiples(driver):
    from selenium.webdriver.common.by import By

    panels = driver.find_elements(By.CSS_SELECTOR, "section.machine figure.panel")
    assert [p.get_attribute("data-metric") for p in panels] == ["step_time_ratio", "efficiency_ratio"]
    page = _box(driver, driver.find_element(By.TAG_NAME, "main"))
    boxes = [_box(driver, p) for p in panels]
    assert boxes[0]["top"] == boxes[1]["top"]                                # side by side
    assert boxes[1]["right"] - boxes[0]["left"] > 0.9 * page["width"]        # across the page's width
    marks = driver.find_elements(By.CSS_SELECTOR, "g.change")
    assert marks and {mark.get_attribute("data-change-run") for mark in marks} == {"0006_main"}
    # the mark sits between the last unchanged run's dot and the first slow run's, in its panel
    chart = marks[0].find_element(By.XPATH, "./..")
    dots = {dot.get_attribute("data-run"): dot for dot in chart.find_elements(By.CSS_SELECTOR, "circle.dot")}
    mark = float(marks[0].find_element(By.TAG_NAME, "line").get_attribute("x1"))
    assert float(dots["0005_main"].get_attribute("cx")) < mark < float(dots["0006_main"].get_attribute("cx"))
    said = dots["0006_main"].find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert "main #6" in said and f"commit {commit_of(5)[:7]}" in said and "2026-12-03 06:11 UTC" in said


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_dashboard_in_headless_chromium(site, tmp_path):
    from selenium.webdriver.common.by import By

    out, names = site
    driver = _viewport_browser(1280, 800)
    try:
        driver.get((out / "index.html").as_uri())
        _check_first_screen(driver, names)
        shot = Path(os.environ.get("LANEBENCH_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        _check_small_multiples(driver)
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.run")
        assert [row.get_attribute("data-run") for row in rows] == names[::-1]          # newest first
        driver.find_element(By.CSS_SELECTOR, "#newest h2 a").click()
        assert driver.current_url.endswith(f"runs/{names[-1]}.html")
        assert driver.title == "main #8 · 2026-12-03 06:11 UTC"
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 4
        assert driver.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


def test_bad_publish_input_exits_2_and_writes_nothing(tmp_path, capsys):
    write_history(tmp_path / "storage", [1.0])
    (tmp_path / "a-file").write_text("keep me")
    assert main(["publish", "--storage", str(tmp_path / "storage"), "--out", str(tmp_path / "a-file")]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "a-file").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "0001_x.json").write_text('{"benchmarks": []}')
    assert main(["publish", "--storage", str(tmp_path / "empty"), "--out", str(tmp_path / "site")]) == 2
    assert "no saved run of this suite" in capsys.readouterr().err and not (tmp_path / "site").exists()
    assert main(["publish", "--storage", str(tmp_path / "nowhere"), "--out", str(tmp_path / "site")]) == 2
    assert "is not a directory" in capsys.readouterr().err


HOSTILE = ('<script>document.title="owned"</script><img src=x onerror="document.title=\'owned\'">'
           '<a href="javascript:alert(1)">x</a>')


def test_a_saved_run_carrying_html_publishes_as_text_with_no_script_or_handler_of_ours(tmp_path):
    import re

    names = write_history(tmp_path / "storage", [1.0, 1.0])
    path = tmp_path / "storage" / "Linux-CPython-3.11-64bit" / f"{names[-1]}.json"
    data = json.loads(path.read_text())
    data["commit_info"]["branch"] = HOSTILE
    data["machine_info"]["cpu"] = {"brand_raw": HOSTILE}
    data["scaling"]["config"]["workload"] = HOSTILE          # runs may name their workload: shown, as text
    data["scaling"]["report_md"] = f"# Report\n\n{HOSTILE}\n\n[click]({'javascript:alert(1)'})\n"
    path.write_text(json.dumps(data))
    assert main(["publish", "--storage", str(tmp_path / "storage"), "--out", str(tmp_path / "site")]) == 0
    pages = [page.read_text() for page in (tmp_path / "site").rglob("*.html")]
    assert len(pages) == 3 and any("&lt;script&gt;" in page for page in pages)     # shown as text
    assert sum("workload &lt;script&gt;" in page for page in pages) == 2          # the index and the run's page
    for page in pages:
        assert not re.search(r"<script", page, re.IGNORECASE)
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", page, re.IGNORECASE)         # no handler attribute
        assert "javascript:" not in re.sub(r"&[a-z]+;|&#\d+;", "", " ".join(re.findall(r'href="([^"]*)"', page)))
    if CHROMIUM and CHROMEDRIVER:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.set_page_load_timeout(60)
            for page in [tmp_path / "site" / "index.html", tmp_path / "site" / "runs" / f"{names[-1]}.html"]:
                driver.get(page.as_uri())
                assert driver.execute_script("return document.scripts.length") == 0
                assert driver.execute_script(
                    "return Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes)"
                    ".some(a => a.name.startsWith('on'))).length") == 0
                assert driver.title != "owned"
        finally:
            driver.quit()
