"""Headless Chromium for the tests (Debian's chromium driven by Playwright): launching it, serving
a folder on loopback, opening a page that may reach nothing off the machine, and checking
the console. Tests that need it skip with the reason where it is missing."""
import contextlib
import functools
import http.server
import os
import shutil
import threading

from autograder.course import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "build" / "screenshots"


def missing():
    """Why no browser test can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make setup)"
    if not os.path.exists(CHROMIUM):
        return "no Chromium: `make setup` installs Debian's chromium as root; none could be installed here"
    return None


@contextlib.contextmanager
def chromium():
    """A headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def served(folder, requests=None):
    """``folder`` served over HTTP on loopback (a free port); the paths asked for go to ``requests``."""
    asked = requests if requests is not None else []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            asked.append(self.path)

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def local(url):
    return url.startswith(("file:", "data:", "about:", "http://127.0.0.1"))


def open_page(browser, url, errors, external):
    """``url`` in a new page: console errors go to ``errors``, requests off the machine are
    refused and listed in ``external``."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.route("**/*", lambda route: route.continue_() if local(route.request.url) else route.abort())
    page.on("request", lambda r: None if local(r.url) else external.append(r.url))
    page.on("console", lambda m: errors.append((m.text, m.location.get("url", "")))
            if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append((f"page error: {exc}", "")))
    page.goto(url)
    page.wait_for_load_state("load")
    return page


def check_clean(errors, external):
    """No console errors and no requests off the machine."""
    assert not external, external
    real = [(text, where) for text, where in errors
            if not where.endswith("/favicon.ico")]    # the bare test server has no icon
    assert not real, real
