"""`ddp-lane-bench publish`: the static dashboard of a storage, opened in a real headless Chromium (Debian's
chromium and chromium-driver): every saved run listed, the change point at the first slow run, every image
loaded, no console error; and bad input refused before anything is written."""
import json
import math
import random
import shutil
from pathlib import Path

import pytest

from lanemodel.console import main

SAVED_RUN = Path(__file__).parent / "data" / "saved_run.json"      # a real run of the suite, with its report
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FACTORS = [1.0] * 5 + [1.25] * 3     # the last 3 runs 25 % slower: the change point is at run 6 (8 runs: a
# permutation test of a shift needs that many to reach p < 0.05)


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
        data["commit_info"]["id"] = f"{i:040x}"
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
    assert {p.name for p in (out / "runs").glob("*.html")} == {f"{name}.html" for name in names}


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_dashboard_in_headless_chromium(site, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    out, names = site
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.get((out / "index.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.run")
        assert [row.get_attribute("data-run") for row in rows] == names
        marks = driver.find_elements(By.CSS_SELECTOR, "line.change")
        assert marks and {mark.get_attribute("data-change-run") for mark in marks} == {"0006_main"}
        # the mark sits between the last unchanged run's dot and the first slow run's
        chart = marks[0].find_element(By.XPATH, "./..")
        dots = {dot.get_attribute("data-run"): float(dot.get_attribute("cx"))
                for dot in chart.find_elements(By.CSS_SELECTOR, "circle.dot")}
        assert dots["0005_main"] < float(marks[0].get_attribute("x1")) < dots["0006_main"]
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
        shutil.copy(tmp_path / "dashboard.png", "/tmp/dashboard.png")
        rows[-1].find_element(By.TAG_NAME, "a").click()
        assert driver.current_url.endswith(f"runs/{names[-1]}.html")
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
    data["scaling"]["report_md"] = f"# Report\n\n{HOSTILE}\n\n[click]({'javascript:alert(1)'})\n"
    path.write_text(json.dumps(data))
    assert main(["publish", "--storage", str(tmp_path / "storage"), "--out", str(tmp_path / "site")]) == 0
    pages = [page.read_text() for page in (tmp_path / "site").rglob("*.html")]
    assert len(pages) == 3 and any("&lt;script&gt;" in page for page in pages)     # shown as text
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
