"""The learner's first hour, in a real browser: open chapter 01 in `make lab`, run it, solve 1.1.

Playwright drives the system Chromium (Debian's `chromium` package), headless, with the flags a
machine without internet needs. JupyterLab serves a temporary copy of `chapters/` (it autosaves),
so the repository's notebooks are never touched. The test leaves a screenshot of the solved
exercise in `docs/first-hour.png`, the picture in the README.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from lab_server import running_lab

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = "01_masked_softmax.ipynb"
SCREENSHOT = Path("docs/first-hour.png")
# headless, and quiet on a closed network: without the background-networking flags Chromium's
# own connections (updates, sync, QUIC probes) are refused and slow everything down
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SOLUTION = (
    "def length_mask(valid_lens, num_keys):\n"
    "    positions = torch.arange(num_keys, device=valid_lens.device)\n"
    "    return positions < valid_lens.unsqueeze(-1)"
)
# JupyterLab settings for a quiet, repeatable page: no news/update toasts, every cell rendered
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
              "to run the end-to-end browser test")
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"COURSE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lab(root, tmp_path):
    """`make lab` on a temporary copy of chapters/; yields the URL of the lab, token included."""
    require_chromium()  # before starting anything
    chapters = tmp_path / "chapters"
    shutil.copytree(root / "chapters", chapters, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    token = "course-browser-token"
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces")}
    with running_lab(root, notebook=NOTEBOOK, token=token, make_vars=(f"CHAPTERS={chapters}",), env=env,
                     timeout=60) as base:
        yield f"{base}/lab?token={token}"


def test_first_hour_in_jupyterlab(root, tmp_path, lab):
    from playwright.sync_api import expect, sync_playwright

    repo_notebook = root / "chapters" / NOTEBOOK
    before = file_digest(repo_notebook)
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 800}, device_scale_factor=1,
            locale="en-US", timezone_id="UTC")
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.set_default_timeout(30_000)
            try:
                solve_exercise_1_1(page, expect, lab)
                page.screenshot(path=str(root / SCREENSHOT))
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"the page at the failure: {tmp_path / 'failure.png'}")
                raise
        finally:
            browser.close()
    print(f"browser test: {time.monotonic() - started:.1f} s with Chromium")
    assert file_digest(repo_notebook) == before, f"the test changed chapters/{NOTEBOOK}"


def solve_exercise_1_1(page, expect, url: str) -> None:
    """What a learner does first: open chapter 01, run it all, then solve Exercise 1.1."""
    started = time.monotonic()
    page.goto(url)
    # open the chapter from the file browser
    page.locator(".jp-DirListing-item", has_text=NOTEBOOK).dblclick()
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    # wait for the kernel, as a learner would: Run All before it is up asks to select a kernel
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Python 3 (ipykernel) | Idle",
                                                               timeout=60_000)

    kernel_ready = time.monotonic()
    # Run > Run All Cells
    choose_menu(page, "Run", "Run All Cells")
    last_check = notebook.locator(".jp-CodeCell", has_text='check("1.5"')
    expect(last_check.locator(".jp-OutputArea")).to_contain_text("Exercise 1.5: not implemented yet",
                                                                  timeout=120_000)
    prompts = notebook.locator(".jp-CodeCell .jp-InputArea-prompt")
    assert prompts.count() > 10
    for index in range(prompts.count()):  # every code cell ran, in order
        assert prompts.nth(index).inner_text().strip() == f"[{index + 1}]:"
    assert notebook.locator(ERROR_OUTPUT).count() == 0, notebook.locator(ERROR_OUTPUT).first.inner_text()

    chapter_ran = time.monotonic()
    exercise = notebook.locator(".jp-CodeCell", has_text="def length_mask")
    check = notebook.locator(".jp-CodeCell", has_text='check("1.1"')
    expect(check.locator(".jp-OutputArea")).to_contain_text("Exercise 1.1: not implemented yet")

    expect(page.locator(".jp-Dialog")).to_have_count(0)  # nothing asked the learner anything

    # replace the stub in the editor, then Shift+Enter twice: the exercise cell, then its check
    exercise.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(SOLUTION)
    expect(exercise.locator(".cm-content")).to_contain_text("positions < valid_lens.unsqueeze(-1)")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    expect(check.locator(".jp-OutputArea")).to_contain_text(
        "Exercise 1.1: correct (4 cases, 2 of them hidden). 2 points.")
    assert "NotImplementedError" not in exercise.inner_text()
    assert notebook.locator(ERROR_OUTPUT).count() == 0

    print(f"browser test: kernel idle after {kernel_ready - started:.1f} s, chapter ran in "
          f"{chapter_ran - kernel_ready:.1f} s, exercise solved in {time.monotonic() - chapter_ran:.1f} s")

    # the picture for the README: the exercise, the solution and the verdict, without the sidebar
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()
    expect(page.locator(".jp-FileBrowser")).to_be_hidden()
    page.locator(".jp-MarkdownCell", has_text="Exercise 1.1").evaluate(
        "cell => cell.scrollIntoView({block: 'start'})")
    page.mouse.move(0, 799)
    page.wait_for_timeout(500)


def choose_menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-item").get_by_text(menu, exact=True).click()
    page.locator(".lm-Menu:visible").get_by_role("menuitem", name=item, exact=True).click()


@pytest.mark.parametrize("required", [False, True])
def test_missing_chromium_skips_unless_required(monkeypatch, tmp_path, required):
    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("COURSE_REQUIRE_BROWSER", "1" if required else "0")
    with pytest.raises(BaseException, match="apt-get install chromium") as stopped:
        require_chromium()
    assert stopped.type is (pytest.fail.Exception if required else pytest.skip.Exception)
