"""`make lab` starts a JupyterLab server that serves the course's chapters."""

from __future__ import annotations

import json
import urllib.request

from lab_server import running_lab

TOKEN = "course-test-token"


def get(url: str):
    return urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"}),
                                  timeout=10)


def test_make_lab_serves_chapter_01(root):
    with running_lab(root, notebook="01_masked_softmax.ipynb", token=TOKEN) as base:
        with get(f"{base}/api/contents/01_masked_softmax.ipynb?content=0") as response:
            model = json.load(response)
        assert model["name"] == "01_masked_softmax.ipynb" and model["type"] == "notebook"
        with get(f"{base}/lab") as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
