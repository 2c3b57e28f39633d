"""The app in a real browser: headless Debian Chromium driven by Selenium (never a downloaded browser).

The app is served in-process (``launch(block=False)``) on a free port over a temporary runs root.
Skipped, with the reason, where /usr/bin/chromium or /usr/bin/chromedriver is missing; .ci/run
installs both, so these run in CI. The first test saves a screenshot; with WORKBENCH_SCREENSHOT=docs/app.png
it also refreshes the README's picture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
           "apt-get install chromium chromium-driver (.ci/run does)")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra: pip install -e '.[dev]'")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "tests" / "data" / "runs" / "demo_chain_sum"
SCREENSHOT = os.environ.get("WORKBENCH_SCREENSHOT")  # e.g. docs/app.png; unset: only a temporary copy
WAIT_LINE = "Wait, let me check: 2 + 3 = 5."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what, fn, timeout=30.0, every=0.25):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = fn()
        except Exception:  # the element is being re-rendered
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def runs_root(tmp_path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(RECORDED, root / "demo")
    return root


@pytest.fixture
def app_url(runs_root, monkeypatch):
    import gradio as gr

    from apps.app import launch

    monkeypatch.chdir(runs_root.parent)  # the page then names the root "runs", as `workbench app` users see it
    # Refresh faster than the default 2 s: the tiny run below does its six steps in seconds.
    url = launch("runs", port=_free_port(), block=False, refresh_seconds=0.5)
    assert url.startswith("http://127.0.0.1:")
    yield url
    gr.close_all()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def _tab(driver, name: str) -> None:
    next(t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text == name).click()


def _choose_run(driver, name: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "#run-select input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE, name, Keys.ENTER)
    driver.find_element(By.TAG_NAME, "h2").click()  # blur: the dropdown commits its value


def test_recorded_run_renders_curves_rollouts_and_behaviours(runs_root, app_url, browser):
    rollouts = [json.loads(line) for line in (RECORDED / "rollouts.jsonl").read_text().splitlines()]
    shown = next(r["completion"] for r in rollouts if r["step"] == 20 and "\n" not in r["completion"])
    extra = {**rollouts[-1], "group": 4, "index": 0, "prompt_id": "chain_sum/train/x", "answer": "5",
             "completion": f"2 + 3 = 6. {WAIT_LINE} <b>not bold</b>", "reward": 1.0, "advantage": 1.5,
             "rewards": {"accuracy": 1.0}}

    browser.get(app_url)
    _wait("the status line of the newest run", lambda: "step 20/20" in _text(browser, "#run-status"))
    assert "finished" in _text(browser, "#run-status") and "640 rollouts" in _text(browser, "#run-status")
    _wait("the curves (plotly)", lambda: browser.find_elements(By.CSS_SELECTOR, "#curves .js-plotly-plot .main-svg"))
    titles = _text(browser, "#curves")
    assert "truncation rate" in titles and "entropy" in titles and "KL to the reference" in titles
    time.sleep(1.0)  # let plotly finish laying out before the screenshot
    shot = runs_root.parent / "app.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if SCREENSHOT:
        shutil.copy(shot, REPO / SCREENSHOT)

    # The recorded run shows no verification at step 20: append a rollout that does (read live).
    with open(runs_root / "demo" / "rollouts.jsonl", "a") as f:
        f.write(json.dumps(extra) + "\n")
    _wait("the appended rollout", lambda: "641 rollouts" in _text(browser, "#run-status"))
    _tab(browser, "Rollouts")
    _wait("a rollout group of the latest step", lambda: shown in _text(browser, "#rollouts"))
    page = _text(browser, "#rollouts")
    assert "step 20 · group 0" in page and "<b>not bold</b>" in page  # model text shown as text
    marks = browser.find_elements(By.CSS_SELECTOR, "#rollouts mark.wb-b-verification")
    assert [m.text for m in marks] == ["let me check"]
    assert marks[0].value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"

    _tab(browser, "Self-verification")
    _wait("the behaviour curves", lambda: browser.find_elements(By.CSS_SELECTOR, "#sv-plot .js-plotly-plot"))
    assert "Behaviour and reward" in _text(browser, "#aha")

    _tab(browser, "Audit")
    browser.find_element(By.CSS_SELECTOR, "#audit-button").click()
    _wait("the audit of the run", lambda: "alarms" in _text(browser, "#audit"))
    assert "641 rollouts over 20 steps" in _text(browser, "#audit") and "accuracy" in _text(browser, "#audit-rescored")

    _choose_run(browser, "../etc")
    _wait("a clear message for a run name outside the runs root",
          lambda: "invalid run name" in _text(browser, "#run-status"))


def test_live_training_run_updates_the_page(runs_root, app_url, browser):
    browser.get(app_url)
    _wait("the page", lambda: "step 20/20" in _text(browser, "#run-status"))
    cmd = [sys.executable, "-m", "workbench.cli", "train", "--model", "tiny-random", "--task", "chain_sum",
           "--max_steps", "6", "--num_generations", "4", "--per_device_train_batch_size", "8",
           "--max_completion_length", "8", "--eval_items", "4", "--runs_root", str(runs_root), "--run_name", "live"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _choose_run(browser, "live")
        seen = []  # steps shown while the training process was still running
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            found = re.search(r"\bstep (\d+)/6\b", _text(browser, "#run-status"))
            if found and proc.poll() is None and (not seen or int(found.group(1)) != seen[-1]):
                seen.append(int(found.group(1)))
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] > seen[0], f"steps seen while training: {seen}"
    _wait("the finished run", lambda: re.search(r"finished.*step 6/6", _text(browser, "#run-status")), timeout=15)
    _tab(browser, "Rollouts")
    _wait("the live run's rollouts", lambda: "step 6 · group 0" in _text(browser, "#rollouts"))
