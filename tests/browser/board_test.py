"""The pipeline board in a real browser (Chromium driven by selenium).

Starts the real server twice on fresh SQLite files: once with tokens (the page asks for
one) and once in protected mode (it asks for none). Run: python3 tests/browser/board_test.py
[--binary target/debug/pipelines] [--artifacts DIR] [--screenshot docs/board.png]

On a failure it saves a screenshot and the page's HTML in the artifacts directory.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

# Where screenshots go.
ARTIFACTS = "target/board-artifacts"

# Values that would run or inject markup if the page ever parsed them as HTML.
XSS_IMAGE = 'registry/shop:<img/src=x/onerror=window.__pwned=1>'
XSS_TEXT = '<script>window.__pwned=2</script><b onmouseover="window.__pwned=3">bold</b>'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, tokens=(), serve_args=()):
        self.dir = tempfile.mkdtemp(prefix="board-test-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DATABASE_URL=f"sqlite://{self.dir}/board.db?mode=rwc", RUST_LOG="warn")
        self.tokens = {}
        subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
        for name, role, *extra in tokens:
            made = subprocess.run(
                [binary, "tokens", "create", "--name", name, "--role", role, *extra],
                env=env, check=True, capture_output=True, text=True,
            )
            self.tokens[name] = made.stdout.strip().split()[-1]
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", *serve_args], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=0.5)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def call(self, method, path, body=None, token=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode() or "null")

    def ok(self, method, path, body=None, token=None):
        status, answer = self.call(method, path, body, token)
        assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def seed(server, token=None):
    """shop: dev (requires ci/build) → staging (requires ci/test) → production (1 approval)."""
    ok = lambda method, path, body=None: server.ok(method, path, body, token)
    ok("POST", "/pipelines", {"name": "shop", "description": XSS_TEXT})
    for app, stage, contexts, policy in [
        ("shop-dev", "development", ["ci/build"], {}),
        ("shop-stg", "staging", ["ci/test"], {}),
        ("shop-prd", "production", [], {"required_approvals": 1}),
    ]:
        ok("POST", "/apps", {"name": app})
        ok("POST", "/pipeline-couplings", {
            "app": app, "pipeline": "shop", "stage": stage,
            "required_status_checks": {"contexts": contexts}, "promotion_policy": policy,
        })
    release = ok("POST", "/apps/shop-dev/releases", {"image": XSS_IMAGE, "description": XSS_TEXT})
    return release


def browser(artifacts):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    return driver


def wait_for(driver, condition, what, timeout=8):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except Exception as error:
        raise AssertionError(f"timed out waiting for {what}") from error


def card(driver, app):
    return driver.find_element(By.CSS_SELECTOR, f'article.card[data-app="{app}"]')


def card_text(app):
    def check(driver):
        try:
            return card(driver, app).text
        except Exception:
            return False
    return check


def click_in(driver, locate, what):
    """Clicks an element the page may be redrawing: found again until the click lands."""
    def attempt(d):
        try:
            locate(d).click()
            return True
        except Exception:
            return False
    wait_for(driver, attempt, f"a click on {what}")


def promote_button(app):
    return lambda d: card(d, app).find_element(By.TAG_NAME, "button")


def text_in_card(app, text):
    return lambda driver: text in (card_text(app)(driver) or "")


def promotion_with_status(status):
    def check(driver):
        items = driver.find_elements(By.CSS_SELECTOR, f'li.promotion[data-status="{status}"]')
        return items[0] if items else False
    return check


def promotion_text(status, text):
    def check(driver):
        try:
            items = driver.find_elements(By.CSS_SELECTOR, f'li.promotion[data-status="{status}"]')
            return any(text in item.text for item in items)
        except Exception:
            return False
    return check


def assert_inert(driver):
    assert driver.execute_script("return window.__pwned === undefined"), "a payload ran"
    assert not driver.find_elements(By.CSS_SELECTOR, "main img, main script, main b"), "markup was parsed"


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_with_tokens(binary, driver):
    server = Server(binary, tokens=[("ci-bot", "write"), ("alice", "write"), ("reader", "read")])
    try:
        ci, alice = server.tokens["ci-bot"], server.tokens["alice"]
        release = seed(server, ci)
        driver.get(server.url + "/")
        # The page asks for a token once, and keeps it out of the URL.
        dialog = wait_for(driver, EC.visibility_of_element_located((By.ID, "token-dialog")), "the token dialog")
        field = dialog.find_element(By.ID, "token-input")
        field.send_keys("plt_not-a-token")
        field.send_keys(Keys.ENTER)
        # A refused token asks again, saying so.
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "token-reason"), "refused"), "the second ask")
        wait_for(driver, EC.visibility_of_element_located((By.ID, "token-dialog")), "the token dialog again")
        console_errors(driver)  # the browser logs the 401 itself
        field = driver.find_element(By.ID, "token-input")
        field.send_keys(alice)
        field.send_keys(Keys.ENTER)
        wait_for(driver, card_text("shop-dev"), "the shop-dev card")
        assert alice not in driver.current_url
        assert driver.execute_script("return sessionStorage.getItem('pipelines.token')") == alice
        wait_for(driver, text_in_card("shop-dev", XSS_IMAGE), "the image, as text")
        wait_for(driver, text_in_card("shop-dev", "ci/build: missing"), "the missing check")
        stage_names = [h.text.lower() for h in driver.find_elements(By.CSS_SELECTOR, "section.stage > h2")]
        assert stage_names == ["review", "development", "staging", "production"], stage_names
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "live"), "live"), "the live stream")

        # A status and a new release appear without a reload.
        statuses = f"/apps/shop-dev/releases/{release['id']}/statuses"
        server.ok("POST", statuses, {"context": "ci/build", "name": XSS_TEXT, "state": "success",
                                     "description": XSS_TEXT}, ci)
        wait_for(driver, text_in_card("shop-dev", "ci/build: success"), "the status on the card", 3)
        second = server.ok("POST", "/apps/shop-dev/releases", {"image": "registry/shop:2"}, ci)
        wait_for(driver, text_in_card("shop-dev", "v2"), "the new release on the card", 3)
        wait_for(driver, text_in_card("shop-dev", "ci/build: missing"), "checks following the current release")
        for context in ["ci/build", "ci/test"]:
            server.ok("POST", f"/apps/shop-dev/releases/{second['id']}/statuses",
                      {"context": context, "name": context, "state": "success"}, ci)
        wait_for(driver, text_in_card("shop-dev", "ci/build: success"), "v2's status")

        # From the keyboard: Enter on the Promote button opens the plan, Escape closes it.
        def press_enter_on_promote(d):
            try:
                promote_button("shop-dev")(d).send_keys(Keys.ENTER)
                return True
            except Exception:
                return False
        wait_for(driver, press_enter_on_promote, "Enter on Promote")
        wait_for(driver, EC.visibility_of_element_located((By.ID, "promote-dialog")), "the plan from the keyboard")
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "promote-body"), "Targets:"), "the plan")
        driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        wait_for(driver, EC.invisibility_of_element_located((By.ID, "promote-dialog")), "Escape closing the plan")

        # Promote through the page: the plan first, then the promotion, followed to its end.
        click_in(driver, promote_button("shop-dev"), "Promote on shop-dev")
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "promote-body"), "Targets:"), "the plan")
        assert "shop-stg" in driver.find_element(By.ID, "promote-body").text
        confirm = driver.find_element(By.ID, "promote-confirm")
        wait_for(driver, lambda d: confirm.is_enabled(), "the confirm button")
        confirm.click()
        wait_for(driver, text_in_card("shop-stg", "registry/shop:2"), "the promoted release on staging")
        wait_for(driver, promotion_text("successful", "by alice"), "the promotion's outcome and author")

        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        # A refused plan shows the server's message and its details.
        server.ok("POST", "/pipelines/shop/freezes",
                  {"stages": ["production"], "ends_at": "2999-01-01T00:00:00Z", "reason": XSS_TEXT}, ci)
        wait_for(driver, lambda d: any(XSS_TEXT in b.text for b in d.find_elements(By.CSS_SELECTOR, ".freeze")),
                 "the freeze banner, its reason as text")
        click_in(driver, promote_button("shop-stg"), "Promote on shop-stg")
        wait_for(driver, EC.text_to_be_present_in_element((By.ID, "promote-body"), "frozen"), "the refusal")
        assert not driver.find_element(By.ID, "promote-confirm").is_enabled()
        driver.find_element(By.ID, "promote-cancel").click()
        # The browser logs the refusal's 409 itself; nothing else may be logged.
        logged = console_errors(driver)
        unexpected = [e for e in logged if not ("/pipeline-promotions" in e["message"] and "409" in e["message"])]
        assert len(logged) == 1 and not unexpected, f"console errors: {logged}"
        freezes = server.ok("GET", "/pipelines/shop/freezes", token=ci)
        admin_needed = server.call("DELETE", f"/pipelines/shop/freezes/{freezes[0]['id']}", token=ci)
        assert admin_needed[0] == 403

        return server, ci
    except Exception:
        server.stop()
        raise


def test_approval(server, ci, driver):
    # Lifting needs an admin; production is left frozen, so approve into a fresh pipeline.
    server.ok("POST", "/pipelines", {"name": "books"}, ci)
    for app, stage, policy in [("books-stg", "staging", {}), ("books-prd", "production", {"required_approvals": 1})]:
        server.ok("POST", "/apps", {"name": app}, ci)
        server.ok("POST", "/pipeline-couplings", {"app": app, "pipeline": "books", "stage": stage,
                                                  "promotion_policy": policy}, ci)
    server.ok("POST", "/apps/books-stg/releases", {"image": "registry/books:1"}, ci)
    driver.execute_script("location.hash = 'books'; location.reload()")
    wait_for(driver, card_text("books-stg"), "the books board")
    for _ in range(2):
        server.ok("POST", "/pipeline-promotions",
                  {"pipeline": {"id": "books"}, "source": {"app": {"id": "books-stg"}}}, ci)
    waiting = wait_for(driver, promotion_with_status("awaiting_approval"), "a promotion awaiting approval")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, 'li.promotion[data-status="awaiting_approval"] button.primary')) == 2,
             "Approve buttons")
    click_in(driver, lambda d: d.find_element(By.CSS_SELECTOR, 'li.promotion[data-status="awaiting_approval"] button.danger'), "Reject")
    wait_for(driver, EC.visibility_of_element_located((By.ID, "reject-dialog")), "the reject dialog")
    driver.find_element(By.ID, "reject-comment").send_keys(XSS_TEXT)
    driver.find_element(By.CSS_SELECTOR, "#reject-form button.danger").click()
    wait_for(driver, promotion_with_status("rejected"), "the rejected promotion")
    click_in(driver, lambda d: d.find_element(By.CSS_SELECTOR, 'li.promotion[data-status="awaiting_approval"] button.primary'), "Approve")
    wait_for(driver, promotion_with_status("successful"), "the approved promotion's success")
    wait_for(driver, text_in_card("books-prd", "registry/books:1"), "the approved release in production")
    del waiting


def test_protected_mode(binary, driver):
    server = Server(binary)
    try:
        seed(server)
        driver.execute_script("sessionStorage.clear()")
        driver.get(server.url + "/")
        wait_for(driver, card_text("shop-dev"), "the board without a token")
        assert not driver.find_element(By.ID, "token-dialog").is_displayed()
        assert "local" in driver.find_element(By.ID, "who").text
        assert_inert(driver)
        # Leaving the page closes its stream: more loads than the browser's six connections
        # per server still draw.
        for _ in range(8):
            driver.get("about:blank")
            driver.get(server.url + "/")
            wait_for(driver, card_text("shop-dev"), "the board after leaving and coming back")
        # On a phone the stages stack: nothing is wider than the screen.
        driver.set_window_size(390, 844)
        driver.refresh()
        wait_for(driver, card_text("shop-dev"), "the board on a phone")
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a phone"
        driver.save_screenshot(os.path.join(ARTIFACTS, "phone.png"))
        driver.set_window_size(1280, 900)
    finally:
        server.stop()


def test_rate_limited(binary, driver):
    """A token with a small read limit: the page's first reads are refused with 429, and it
    waits out each Retry-After instead of failing."""
    server = Server(
        binary,
        tokens=[("ops", "admin", "--rate-limit-read", "0", "--rate-limit-write", "0"),
                ("viewer", "read", "--rate-limit-read", "1/2")],
    )
    try:
        seed(server, server.tokens["ops"])
        driver.get(server.url + "/")
        dialog = wait_for(driver, EC.visibility_of_element_located((By.ID, "token-dialog")), "the token dialog")
        field = dialog.find_element(By.ID, "token-input")
        field.send_keys(server.tokens["viewer"])
        field.send_keys(Keys.ENTER)
        wait_for(driver, card_text("shop-dev"), "the shop-dev card, after the waits", timeout=30)
        wait_for(driver, text_in_card("shop-dev", "ci/build: missing"), "the missing check", timeout=30)
        status, metrics = 0, ""
        request = urllib.request.Request(server.url + "/metrics")
        request.add_header("authorization", f"Bearer {server.tokens['ops']}")
        with urllib.request.urlopen(request, timeout=10) as response:
            status, metrics = response.status, response.read().decode()
        assert status == 200
        refused = [line for line in metrics.splitlines()
                   if line.startswith('pipelines_rate_limited_total{kind="read"}')]
        assert refused and float(refused[0].split()[-1]) > 0, "the page's reads were refused first"
        console_errors(driver)  # the browser logs the 429s itself
        driver.execute_script("sessionStorage.clear()")
    finally:
        server.stop()


def demo_screenshot(binary, driver, path):
    """A realistic board for the README: four stages, checks, a freeze, promotions."""
    server = Server(binary, tokens=[("ci-bot", "write"), ("alice", "write")])
    try:
        ci, alice = server.tokens["ci-bot"], server.tokens["alice"]
        ok = lambda method, path_, body=None, token=ci: server.ok(method, path_, body, token)
        ok("POST", "/pipelines", {"name": "shop", "description": "The web shop"})
        apps = [
            ("shop-pr-481", "review", [], {}),
            ("shop-dev", "development", ["ci/unit"], {}),
            ("shop-stg", "staging", ["ci/unit", "ci/e2e"], {"auto_promote": True}),
            ("shop-prd", "production", ["qa/sign-off"], {"required_approvals": 1}),
        ]
        for app, stage, contexts, policy in apps:
            ok("POST", "/apps", {"name": app})
            ok("POST", "/pipeline-couplings", {"app": app, "pipeline": "shop", "stage": stage,
                                               "required_status_checks": {"contexts": contexts},
                                               "promotion_policy": policy})
        ok("PATCH", "/apps/shop-dev/config-vars", {"DATABASE_URL": "x", "FEATURE_CART": "on"})
        ok("PATCH", "/apps/shop-stg/config-vars", {"DATABASE_URL": "y"})
        ok("PATCH", "/apps/shop-prd/config-vars", {"DATABASE_URL": "z"})
        ok("POST", "/apps/shop-pr-481/releases", {"image": "registry.example.com/shop:pr-481"})
        old = ok("POST", "/apps/shop-dev/releases", {"image": "registry.example.com/shop:1.4.1"})
        for context in ["ci/unit", "ci/e2e", "qa/sign-off"]:
            ok("POST", f"/apps/shop-dev/releases/{old['id']}/statuses",
               {"context": context, "name": context, "state": "success"})
        time.sleep(1)  # shop-stg auto-promotes the release once its checks are green
        staged = ok("GET", "/apps/shop-stg/pipeline-couplings")["release"]
        ok("POST", f"/apps/shop-stg/releases/{staged['id']}/statuses",
           {"context": "qa/sign-off", "name": "QA", "state": "success"})
        ok("POST", "/pipeline-promotions", {"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}}, alice)
        time.sleep(0.5)
        promotions = ok("GET", "/pipeline-promotions?pipeline=shop")
        waiting = [p for p in promotions if p["status"] == "awaiting_approval"][0]
        ok("POST", f"/pipeline-promotions/{waiting['id']}/approvals", {"comment": "QA signed off"})
        time.sleep(1)
        new = ok("POST", "/apps/shop-dev/releases", {"image": "registry.example.com/shop:1.5.0"})
        ok("POST", f"/apps/shop-dev/releases/{new['id']}/statuses",
           {"context": "ci/unit", "name": "Unit tests", "state": "success"})
        ok("POST", f"/apps/shop-dev/releases/{new['id']}/statuses",
           {"context": "ci/e2e", "name": "End to end", "state": "pending"})
        ok("POST", "/pipeline-promotions", {"pipeline": {"id": "shop"}, "source": {"app": {"id": "shop-stg"}}}, alice)
        ok("POST", "/pipelines/shop/freezes", {"stages": ["production"], "ends_at": "2026-12-24T18:00:00Z",
                                              "reason": "Holiday sale: production frozen"})
        driver.get(server.url + "/ui/favicon.svg")
        driver.execute_script("sessionStorage.setItem('pipelines.token', arguments[0])", ci)
        driver.get(server.url + "/#shop")
        wait_for(driver, text_in_card("shop-prd", "registry.example.com/shop:1.4.1"), "the demo board")
        wait_for(driver, promotion_with_status("awaiting_approval"), "the waiting promotion")
        time.sleep(0.5)
        driver.save_screenshot(path)
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/debug/pipelines")
    parser.add_argument("--artifacts", default=os.environ.get("BOARD_ARTIFACTS", "target/board-artifacts"))
    parser.add_argument("--screenshot", help="also save a screenshot of the board here")
    parser.add_argument("--demo-screenshot", help="only save a screenshot of a demo board here")
    args = parser.parse_args()
    global ARTIFACTS
    ARTIFACTS = args.artifacts
    os.makedirs(args.artifacts, exist_ok=True)
    driver = browser(args.artifacts)
    if args.demo_screenshot:
        try:
            driver.get("about:blank")
            demo_screenshot(args.binary, driver, args.demo_screenshot)
        finally:
            driver.quit()
        return
    step = "start"
    try:
        step = "tokens, live updates, promote"
        server, ci = test_with_tokens(args.binary, driver)
        try:
            assert_inert(driver)
            step = "approval and rejection"
            test_approval(server, ci, driver)
            assert_inert(driver)
            if args.screenshot:
                driver.execute_script("location.hash = 'shop'; location.reload()")
                wait_for(driver, text_in_card("shop-stg", "registry/shop:2"), "the shop board")
                time.sleep(0.5)
                driver.save_screenshot(args.screenshot)
            step = "console errors"
            errors = console_errors(driver)
            assert not errors, f"console errors: {errors}"
        finally:
            server.stop()
        step = "rate limited"
        test_rate_limited(args.binary, driver)
        step = "protected mode"
        test_protected_mode(args.binary, driver)
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        errors = console_errors(driver)
        assert not errors, f"console errors: {errors}"
        print("board: every browser test passed")
    except Exception:
        shot = os.path.join(args.artifacts, "failure.png")
        driver.save_screenshot(shot)
        with open(os.path.join(args.artifacts, "failure.html"), "w") as page:
            page.write(driver.page_source)
        traceback.print_exc()
        print(f"board: FAILED at {step}; screenshot {shot}", file=sys.stderr)
        sys.exit(1)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
