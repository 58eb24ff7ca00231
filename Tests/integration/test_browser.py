"""The authorization code flow in a real browser (headless Chromium through WebDriver):
the login and consent forms, the session cookie, and the CSP form-action that must let
the consent form's redirect reach the client. Screenshots go to $GATEHOUSE_SHOTS if set.

Without Chromium these tests skip on a developer's machine, but in CI (the environment
variable CI set, as .ci/run does) they fail: a CI run that skipped the browser's security
checks (CSP form-action, cookie flags, CORS) must not pass."""
import os
import shutil
import urllib.parse

import pytest

from conftest import PASSWORD, query_of

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

DRIVER = shutil.which("chromedriver")
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
MISSING = [name for name, present in (("python package selenium", webdriver), ("chromium-driver (chromedriver)", DRIVER),
                                      ("chromium", BROWSER)) if not present]


# Locally: skip at collection, before the stack starts. In CI: run, and fail in require_browser.
pytestmark = pytest.mark.skipif(bool(MISSING) and not IN_CI, reason="cannot run the browser tests: missing "
                                + ", ".join(MISSING))


def require_browser():
    """Skips locally, fails in CI, when the browser cannot run."""
    if MISSING:
        message = "cannot run the browser tests: missing " + ", ".join(MISSING)
        if IN_CI:
            pytest.fail("CI: " + message + " (scripts/test.sh installs chromium and chromium-driver)", pytrace=False)
        pytest.skip(message)


def test_browser_is_available_in_ci():
    """The guard itself, so a CI run reports the cause once even if no other test ran."""
    require_browser()


@pytest.fixture(scope="module")
def browser_factory():
    require_browser()
    drivers = []

    def make(width=1280, height=900):
        options = webdriver.ChromeOptions()
        options.binary_location = BROWSER
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
                    f"--window-size={width},{height}", "--disable-dev-shm-usage"):
            options.add_argument(arg)
        d = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
        d.set_page_load_timeout(30)
        drivers.append(d)
        return d

    yield make
    for d in drivers:
        d.quit()


def wait_for(driver, condition):
    """Waits (bounded) for the navigation a click started to land."""
    WebDriverWait(driver, 15).until(lambda d: condition(d))


def shot(driver, name):
    folder = os.environ.get("GATEHOUSE_SHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        driver.save_screenshot(os.path.join(folder, name + ".png"))


@pytest.mark.parametrize("width,height,label", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_full_flow_in_chromium(stack, browser_factory, width, height, label):
    # The redirect URI is on this server (any page will do): the browser must get there.
    callback = f"{stack.url}/example/callback"
    c = stack.add_client("--name", "Browser App", "--redirect-uri", callback)
    user = f"browser-{label}@org"
    stack.add_user(user)
    d = browser_factory(width, height)
    query = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"], "scope": "PRODUCTION",
                                    "redirect_uri": callback, "state": "st-" + label})
    d.get(f"{stack.url}/authorize?{query}")
    assert "Sign in" in d.page_source
    shot(d, f"login-{label}")
    d.find_element(By.NAME, "username").send_keys(user)
    d.find_element(By.NAME, "password").send_keys("wrong password")
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(d, lambda d: "Incorrect username or password." in d.page_source)
    shot(d, f"login-error-{label}")
    d.find_element(By.NAME, "password").send_keys(PASSWORD)
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(d, lambda d: "wants to access your account" in d.page_source)
    shot(d, f"consent-{label}")
    d.find_element(By.CSS_SELECTOR, "button[name=decision][value=allow]").click()
    # The CSP form-action allowed the 303 to the client: the browser is at the callback.
    wait_for(d, lambda d: d.current_url.startswith(callback + "?"))
    q = query_of(d.current_url)
    assert q["state"] == "st-" + label and q["iss"] == stack.url and q["code"]
    cookie = d.get_cookie("__Host-gatehouse")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    r = stack.post("/token", data={"grant_type": "authorization_code", "code": q["code"], "redirect_uri": callback},
                   auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 200, r.text
    # Consent is remembered: the next request goes straight back with a code.
    d.get(f"{stack.url}/authorize?{query}")
    wait_for(d, lambda d: d.current_url.startswith(callback + "?") and "code=" in d.current_url)


@pytest.mark.parametrize("width,height,label", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_openid_consent_and_logout_in_chromium(stack, browser_factory, width, height, label):
    """The consent page names the claims in words; /logout asks before signing out, then says so."""
    callback = f"{stack.url}/example/callback"
    c = stack.add_client("--name", "Profile App", "--redirect-uri", callback, "--scope", "openid profile email",
                         "--post-logout-redirect-uri", callback)
    user = f"oidc-{label}@org"
    stack.add_user(user)
    d = browser_factory(width, height)
    query = urllib.parse.urlencode({"response_type": "code", "client_id": c["client_id"], "scope": "openid profile email",
                                    "redirect_uri": callback, "state": "s", "nonce": "n"})
    d.get(f"{stack.url}/authorize?{query}")
    d.find_element(By.NAME, "username").send_keys(user)
    d.find_element(By.NAME, "password").send_keys(PASSWORD)
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(d, lambda d: "your email address" in d.page_source)
    assert "your name and username" in d.page_source
    shot(d, f"consent-openid-{label}")
    d.find_element(By.CSS_SELECTOR, "button[name=decision][value=allow]").click()
    wait_for(d, lambda d: d.current_url.startswith(callback + "?"))
    d.get(f"{stack.url}/logout?" + urllib.parse.urlencode({"client_id": c["client_id"], "post_logout_redirect_uri": callback,
                                                           "state": "bye"}))
    assert "Sign out?" in d.page_source
    shot(d, f"logout-confirm-{label}")
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(d, lambda d: d.current_url.startswith(callback + "?state=bye"))
    d.get(f"{stack.url}/logout")
    assert "You are signed out" in d.page_source
    shot(d, f"logout-done-{label}")


def test_error_page_in_chromium(stack, browser_factory):
    d = browser_factory(390, 844)
    d.get(f"{stack.url}/authorize?response_type=code&client_id=nobody")
    assert "This request cannot be completed" in d.page_source
    shot(d, "error-phone")


FETCH_TOKEN = """
const [url, basic, done] = arguments;
fetch(url, {method: "POST", headers: {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"},
            body: "grant_type=client_credentials"})
  .then(r => r.json().then(j => done({status: r.status, body: j})))
  .catch(e => done({error: String(e)}));
"""


def test_cross_origin_token_request_from_a_page_in_chromium(stack, browser_factory):
    """A single-page app at another origin (the example upstream, http://127.0.0.1:PORT)
    calls /token with fetch(): the preflight and the response's CORS headers let Chromium
    hand the answer to the page, and only for the client whose redirect URI has that origin."""
    import base64
    page_origin = f"http://127.0.0.1:{stack.example_port}"
    spa = stack.add_client("--name", "SPA", "--redirect-uri", page_origin + "/callback",
                           "--grant-types", "client_credentials")
    other = stack.add_client("--name", "Elsewhere", "--redirect-uri", "https://elsewhere.example/cb",
                             "--grant-types", "client_credentials")
    d = browser_factory(1280, 900)
    d.set_script_timeout(15)
    d.get(page_origin + "/spa.html")

    def basic(c):
        return "Basic " + base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()

    ok = d.execute_async_script(FETCH_TOKEN, stack.url + "/token", basic(spa))
    assert ok.get("status") == 200 and ok["body"]["token_type"] == "Bearer", ok
    refused = d.execute_async_script(FETCH_TOKEN, stack.url + "/token", basic(other))
    assert "error" in refused and "Failed to fetch" in refused["error"], refused
