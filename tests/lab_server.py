"""Start the server `make lab` starts, on a free port, wait for it, and always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_lab(root: Path, *, notebook: str, token: str, make_vars: tuple[str, ...] = (),
                env: dict | None = None, timeout: float = 90) -> Iterator[str]:
    """`make lab` in ``root``; yields its base URL once the contents API serves ``notebook``."""
    port = free_port()
    lab_args = (f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 "
                f"--IdentityProvider.token={token}")
    server = subprocess.Popen(["make", "--no-print-directory", "lab", *make_vars, f"LAB_ARGS={lab_args}"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    api = urllib.request.Request(f"{base}/api/contents/{notebook}?content=0",
                                 headers={"Authorization": f"token {token}"})
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(api, timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, f"JupyterLab did not answer within {timeout} s"
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
