#!/usr/bin/python3
"""The dashboard in a real browser (issue 14), run by DashboardBrowserTests.swift.

Debian's headless Chromium, driven through Debian's chromedriver by Selenium (python3-selenium), against a live
`conveyor serve`, a live `conveyor worker` serving the queue `work` and the private redis-server that the Swift test
seeded (redis-py reads and checks it directly). The seed, which this script relies on:

- mail: sent-1 and sent-2 completed with results, bounce-1 failed for good, welcome-1..3 pending, reminder-1
  scheduled, and the schedule nightly-digest;
- reports: xss-1 failed, whose payload, error and type hold <script>window.__xss=1</script>; old-1 cancelled; may
  pending;
- idle: idle-1 and idle-2 pending, no worker;
- work: sleep jobs, done by the worker.

Prints what it checks and measures; exits 1 at the first failed check (with a screenshot failure.png), 0 when all
passed. Every wait is explicit and generous (a loaded 2-core machine), except the measured live-update latency.
"""

import argparse
import json
import signal
import sys
import time
import traceback
import urllib.error
import urllib.request

import redis
from selenium.webdriver.common.action_chains import ActionChains
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

XSS = "<script>window.__xss=1</script>"
WAIT = 30  # seconds: the patience of every explicit wait
LIVE_LIMIT_MS = 1000  # a live update must show within this of the transition

STATUS_INDEX = {
    "scheduled": "scheduled",
    "retrying": "retry",
    "processing": "active",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def log(text):
    print(text, flush=True)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Dashboard:
    def __init__(self, arguments):
        self.base = arguments.base_url.rstrip("/")
        self.empty_base = arguments.empty_base_url.rstrip("/")
        self.token = arguments.token
        self.shots = arguments.screenshots
        self.redis = redis.Redis(host="127.0.0.1", port=arguments.redis_port, decode_responses=True)
        self.namespace = arguments.namespace
        self.measured = {}
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,860",
            "--user-data-dir=" + arguments.profile,
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-renderer-backgrounding",
            "--disable-background-timer-throttling",
            "--lang=en-US",
        ]:
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(WAIT)

    def quit(self):
        try:
            self.driver.quit()
        except Exception as error:  # the browser may already be gone
            log(f"(quitting the browser: {error})")

    # Redis, as the worker and the server see it.

    def key(self, queue, rest):
        return f"{self.namespace}:{{{queue}}}:{rest}"

    def pending(self, queue):
        return self.redis.llen(self.key(queue, "pending")) + self.redis.zcard(self.key(queue, "prioritized"))

    def counts(self, queue):
        counts = {"pending": self.pending(queue)}
        for status, index in STATUS_INDEX.items():
            counts[status] = self.redis.zcard(self.key(queue, index))
        return counts

    def job(self, job_id):
        queue, local = job_id.split("/", 1)
        return self.redis.hgetall(self.key(queue, "job:" + local))

    def paused(self, queue):
        return self.redis.hget(self.key(queue, "meta"), "paused") == "1"

    # HTTP without the browser.

    def http(self, method, path, body=None, headers=None, bearer=True):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if bearer:
            request.add_header("Authorization", "Bearer " + self.token)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        opener = urllib.request.build_opener(NoRedirects)
        try:
            with opener.open(request, timeout=WAIT) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # The browser.

    def wait(self, condition, what, timeout=WAIT):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda driver: condition())
        except Exception as error:
            raise CheckFailed(f"timed out after {timeout} s waiting for {what} ({type(error).__name__})") from None

    def until(self, condition, what, timeout=WAIT, every=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(every)
        raise CheckFailed(f"timed out after {timeout} s waiting for {what}")

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector, what=None):
        return self.wait(lambda: (self.css(selector) or [None])[0], what or selector)

    def press(self, selector):
        """Clicks what `selector` finds now: a live refresh can replace the element between finding and clicking it
        (a busy queue's page refreshes up to four times a second), and then the new one is clicked, as a person
        would click the button they see."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                self.one(selector).click()
                return
            except StaleElementReferenceException:
                if time.monotonic() > deadline:
                    raise

    def open(self, path, page):
        self.driver.get(self.base + path)
        self.wait(lambda: self.driver.execute_script("return document.body && document.body.dataset.page") == page,
                  f"{path} to show page '{page}'")
        self.wait(lambda: self.driver.execute_script("return document.readyState") == "complete", f"{path} to load")

    def script(self, text, *arguments):
        return self.driver.execute_script(text, *arguments)

    def shot(self, name):
        path = f"{self.shots}/{name}.png"
        self.driver.save_screenshot(path)
        log(f"  screenshot {path}")

    def connected(self):
        """Waits until the page's EventSource is open (the live dot turns on)."""
        self.wait(lambda: self.script("const s = document.getElementById('live-state'); return !!s && s.classList.contains('on')"),
                  "the live connection (#live-state.on)")

    def no_script_ran(self, where):
        check(self.script("return typeof window.__xss") == "undefined", f"{where}: the <script> payload ran")
        sources = self.script("return Array.from(document.scripts).map((s) => s.src || ('inline:' + s.textContent))")
        check(sources == [self.base + "/assets/app.js"], f"{where}: unexpected scripts in the page: {sources}")

    def mark(self):
        """Sets a marker on the window: it survives a DOM refresh, not a navigation or reload."""
        marker = f"m{time.time_ns()}"
        self.script("window.__marker = arguments[0];", marker)
        return marker

    def still(self, marker, where):
        check(self.script("return window.__marker") == marker, f"{where}: the page was reloaded or navigated")

    # The checks.

    def sign_in(self):
        log("sign-in: through the real form")
        self.driver.get(self.base + "/")
        self.wait(lambda: "/login" in self.driver.current_url, "the redirect to /login")
        self.one("input[name=secret]")
        check(not self.css("nav a[href='/workers']"), "the sign-in page shows the navigation")
        self.shot("01-sign-in")
        self.one("input[name=secret]").send_keys("not-the-token")
        self.one("#sign-in").click()
        self.one("#sign-in-error", "the wrong-credentials message")
        check(self.script("return document.body.dataset.page") is None, "a wrong token signed in")
        self.one("input[name=secret]").send_keys(self.token)
        self.one("#sign-in").click()
        self.wait(lambda: self.script("return document.body.dataset.page") == "overview", "the overview after sign-in")
        cookies = {cookie["name"]: cookie for cookie in self.driver.get_cookies()}
        check("conveyor_session" in cookies and cookies["conveyor_session"].get("httpOnly"),
              f"no HttpOnly session cookie after sign-in: {sorted(cookies)}")
        check("conveyor_csrf" in cookies, "no CSRF cookie")
        log("  a wrong token is refused, the right one signs in (HttpOnly session cookie)")

    def overview(self):
        log("overview: every queue with the counts Redis holds")
        self.open("/", "overview")
        rows = self.wait(lambda: [row.get_attribute("data-queue") for row in self.css("#queues tr[data-queue]")] or None,
                         "the queue rows")
        check(set(rows) >= {"mail", "reports", "idle", "work"}, f"queues shown: {rows}")
        for queue in ["mail", "reports", "idle"]:
            expected = self.counts(queue)
            shown = {cell.get_attribute("data-status"): cell.text
                     for cell in self.css(f'#queues tr[data-queue="{queue}"] td[data-status]')}
            check(shown == {status: str(count) for status, count in expected.items()},
                  f"{queue}: the page shows {shown}, Redis holds {expected}")
            log(f"  {queue}: {shown}")
        check(self.counts("mail")["failed"] == 1 and self.counts("mail")["completed"] == 2, "the seed is not there")
        work_completed = self.one('#queues tr[data-queue="work"] td[data-status="completed"]').text
        check(int(work_completed) >= 24, f"work shows {work_completed} completed")
        bars = len(self.css("#throughput rect"))
        caption = self.one(".chart figcaption").text
        check(bars > 0 and "completed" in caption, f"the throughput chart: {bars} bars, '{caption}'")
        log(f"  chart: {bars} bars, '{caption}'")
        self.one("#feed")
        self.connected()
        self.no_script_ran("overview")
        self.shot("02-overview")

    def queue_page(self):
        log("queue page: pending and failed jobs of mail")
        self.open("/queues/mail", "queue")
        ids = [row.get_attribute("data-job") for row in self.css("#jobs tr[data-job]")]
        check(ids == ["mail/welcome-1", "mail/welcome-2", "mail/welcome-3"], f"pending jobs shown: {ids}")
        tabs = {tab.text.split()[0]: tab.text.split()[-1] for tab in self.css(".tabs li a")}
        check(tabs.get("pending") == "3" and tabs.get("failed") == "1" and tabs.get("scheduled") == "1",
              f"tabs: {tabs}")
        check(self.css('button.action[data-path="/api/queues/mail/pause"]'), "no pause button")
        self.shot("03-queue-mail")
        self.open("/queues/mail?status=failed", "queue")
        row = self.one('#jobs tr[data-job="mail/bounce-1"]')
        check("550 5.1.1 mailbox unavailable" in row.text, f"the failed row: {row.text}")
        self.shot("04-queue-mail-failed")

    def retry(self):
        log("retry: the failed job's button makes it pending in Redis")
        check(self.job("mail/bounce-1").get("status") == "failed", "bounce-1 is not failed before the click")
        marker = self.mark()
        button = '#jobs tr[data-job="mail/bounce-1"] button.action[data-path="/api/jobs/mail/bounce-1/retry"]'
        check(self.one(button).get_attribute("data-method") == "POST", "the retry button's method")
        self.press(button)
        status = self.until(lambda: self.job("mail/bounce-1").get("status") == "pending" and "pending",
                            "bounce-1 to be pending in Redis")
        self.wait(lambda: not self.css('#jobs tr[data-job="mail/bounce-1"]'), "the row to leave the failed list")
        check(self.one("#flash").text == "", f"flash: {self.one('#flash').text}")
        self.still(marker, "retry")
        check(self.counts("mail")["failed"] == 0, "mail still has a failed job")
        log(f"  bounce-1 is {status} in Redis; the list refreshed in place")

    def job_pages(self):
        log("job page: fields, payload, result, timeline")
        self.open("/jobs/mail/sent-1", "job")
        check(self.one("#job-status").text == "completed", "sent-1's status")
        fields = self.one("#job-fields").text
        check("email" in fields and "mail" in fields, f"fields: {fields}")
        payload = json.loads(self.one("#job-payload").text)
        check(payload == {"to": "sent-1@example.com", "subject": "Welcome"}, f"the payload: {payload}")
        result = json.loads(self.one("#job-result").text)
        check(result == {"message_id": "<mail/sent-1@mx.example.com>"}, f"the result: {result}")
        timeline = [item.text for item in self.css("#timeline li")]
        check(len(timeline) >= 3 and "processing → completed" in timeline[-1], f"timeline: {timeline}")
        self.no_script_ran("job page")
        self.shot("05-job-completed")
        self.open("/jobs/mail/bounce-1", "job")
        check(self.one("#job-status").text == "pending", "bounce-1's page after the retry")
        timeline = " | ".join(item.text for item in self.css("#timeline li"))
        check("processing → failed" in timeline and "failed → pending" in timeline, f"timeline: {timeline}")
        self.shot("06-job-retried")

    def hostile(self):
        log("a <script> in payload, error and type is shown as text and never runs")
        self.open("/jobs/reports/xss-1", "job")
        check(XSS in self.one("#job-payload").text, f"payload: {self.one('#job-payload').text}")
        check(XSS in self.one("#job-error").text, f"error: {self.one('#job-error').text}")
        check(XSS in self.one("#job-fields").text, "the type field")
        self.no_script_ran("the hostile job's page")
        self.shot("07-job-xss")
        self.open("/queues/reports?status=failed", "queue")
        row = self.one('#jobs tr[data-job="reports/xss-1"]')
        check(row.text.count(XSS) == 2, f"the row shows type and error as text: {row.text}")
        self.no_script_ran("the reports queue")
        self.open("/", "overview")
        self.no_script_ran("the overview")
        log("  shown as text on the job page, the queue page; window.__xss stays undefined")

    def schedules(self):
        log("schedules page")
        self.open("/schedules", "schedules")
        row = self.one('#schedules tr[data-schedule="nightly-digest"]')
        check("mail" in row.text and "digest" in row.text and "cron 0 3 1 1 *" in row.text and "active" in row.text,
              f"the schedule row: {row.text}")
        check(self.css('#schedules button.action[data-path="/api/schedules/mail/nightly-digest/pause"]'),
              "no pause button for the schedule")
        self.shot("08-schedules")

    def workers(self):
        log("workers page: the live worker and the leader")
        # The worker's embedded scheduler takes the lead within a few seconds of its start.
        deadline = time.monotonic() + WAIT
        while True:
            self.open("/workers", "workers")
            leader = self.one("#leader").text
            if "epoch" in leader or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        check("epoch" in leader, f"no leader: {leader}")
        rows = [row.text for row in self.css("#workers tbody tr")]
        check(len(rows) == 1 and "work" in rows[0], f"worker rows: {rows}")
        self.shot("09-workers")
        log(f"  leader: {leader}; worker: {rows[0][:80]}")

    def measure_live(self, what, transition, changed):
        """Runs `transition` and returns how long until `changed` (a JS expression) held in the page, measured in
        the page by a MutationObserver, from just before the transition's request; no reload in between."""
        marker = self.mark()
        self.script(
            """
            window.__changedAt = null;
            const changed = new Function('return (' + arguments[0] + ');');
            const observer = new MutationObserver(() => {
              if (window.__changedAt === null && changed()) { window.__changedAt = Date.now(); observer.disconnect(); }
            });
            observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
            """,
            changed,
        )
        check(not self.script(f"return ({changed});"), f"{what}: the change is there before the transition")
        started = time.time() * 1000
        transition()
        changed_at = self.until(lambda: self.script("return window.__changedAt"), f"{what} to show", timeout=WAIT)
        self.still(marker, what)
        latency = changed_at - started
        log(f"  {what}: shown {latency:.0f} ms after the transition, without a reload")
        return latency

    def live_updates(self):
        log("live updates: a transition shows without a reload")
        self.open("/", "overview")
        self.connected()
        time.sleep(1.5)  # let the page settle: the first refreshes after connecting
        before = self.one('#queues tr[data-queue="idle"] td[data-status="pending"]').text
        cell = '(document.querySelector(\'#queues tr[data-queue="idle"] td[data-status="pending"]\') || {}).textContent'
        overview = []
        for attempt in range(3):
            expected = int(before) + attempt + 1

            def enqueue():
                status, text = self.http("POST", "/api/jobs", {"type": "noop", "queue": "idle", "payload": {"n": attempt}})
                check(status == 201, f"enqueue through the API: {status} {text}")

            overview.append(self.measure_live(f"overview count (enqueue {attempt + 1})", enqueue,
                                              f"{cell} === '{expected}'"))
            time.sleep(0.5)
        self.shot("10-overview-live")

        self.open("/jobs/idle/idle-1", "job")
        self.connected()
        time.sleep(1.5)
        check(self.one("#job-status").text == "pending", "idle-1 is not pending")

        def cancel():
            status, text = self.http("POST", "/api/jobs/idle/idle-1/cancel")
            check(status == 200, f"cancel through the API: {status} {text}")

        job = self.measure_live("job status (cancel)", cancel,
                                "(document.getElementById('job-status') || {}).textContent === 'cancelled'")
        check(self.job("idle/idle-1").get("status") == "cancelled", "idle-1 is not cancelled in Redis")
        self.measured["live_overview_ms"] = [round(value) for value in overview]
        self.measured["live_job_ms"] = round(job)
        worst = max(overview + [job])
        check(worst <= LIVE_LIMIT_MS, f"a live update took {worst:.0f} ms (limit {LIVE_LIMIT_MS} ms)")

    def pause(self):
        log("pause: the queue page's button stops the running worker from claiming; resume starts it again")
        jobs = [{"type": "sleep", "queue": "work", "payload": {"ms": 150}} for _ in range(300)]
        status, text = self.http("POST", "/api/jobs/bulk", {"jobs": jobs})
        check(status == 201, f"bulk enqueue: {status} {text}")
        self.open("/queues/work", "queue")
        self.connected()
        start = self.pending("work")
        self.until(lambda: self.pending("work") < start - 3, "the worker to claim jobs of work", timeout=WAIT)
        marker = self.mark()
        self.press('button.action[data-path="/api/queues/work/pause"]')
        self.until(lambda: self.paused("work"), "work to be paused in Redis")
        self.wait(lambda: self.css('button.action[data-path="/api/queues/work/resume"]'), "the resume button")
        self.wait(lambda: "paused" in self.script("return document.querySelector('h1').textContent"), "the paused badge")
        self.still(marker, "pause")
        # Jobs claimed before the pause may still finish; none may be claimed after it.
        self.until(lambda: self.counts("work")["processing"] == 0, "the jobs claimed before the pause to finish")
        before = self.pending("work")
        time.sleep(2.5)
        after = self.pending("work")
        check(before > 0, "no jobs left to show that claiming stopped")
        check(after == before and self.counts("work")["processing"] == 0,
              f"the paused queue's pending count went {before} -> {after}")
        self.measured["paused_pending"] = [before, after]
        log(f"  paused: pending stayed {before} for 2.5 s, nothing processing")
        self.shot("11-queue-work-paused")
        self.press('button.action[data-path="/api/queues/work/resume"]')
        self.until(lambda: not self.paused("work"), "work to be resumed in Redis")
        resumed = time.monotonic()
        self.until(lambda: self.pending("work") < before, "the worker to claim again after the resume", timeout=WAIT)
        self.measured["claim_after_resume_ms"] = round((time.monotonic() - resumed) * 1000)
        self.wait(lambda: self.css('button.action[data-path="/api/queues/work/pause"]'), "the pause button again")
        self.still(marker, "resume")
        log(f"  resumed: claiming again after {self.measured['claim_after_resume_ms']} ms")
        self.typing_survives_live_updates()
        self.slow_click_survives_live_updates()

    def slow_refreshes(self):
        """Makes the page's refreshes take 0.8 s to come back, as on a slow link, and waits until one is on its way
        (window.fetch = window.__fetch undoes it)."""
        self.script("""
            window.__fetch = window.__fetch || window.fetch;
            window.__slow = 0;
            window.fetch = (input, init) => {
                if (!String((input && input.url) || input).includes('fragment=1')) return window.__fetch(input, init);
                window.__slow += 1;
                return new Promise((resolve) => setTimeout(resolve, 800))
                    .then(() => window.__fetch(input, init))
                    .finally(() => { window.__slow -= 1; });
            };
        """)
        self.wait(lambda: self.script("return window.__slow") > 0, "a live refresh on its way")

    def slow_click_survives_live_updates(self):
        """A button held down while refreshes land (a slow click on a busy page) still acts when it is released."""
        log("a slow click on a busy queue's page")
        self.press("h1")
        self.slow_refreshes()
        button = self.one('button.action[data-path="/api/queues/work/pause"]')
        ActionChains(self.driver).click_and_hold(button).perform()
        time.sleep(1.5)  # at least one refresh comes back meanwhile
        ActionChains(self.driver).release().perform()
        self.until(lambda: self.paused("work"), "the slowly clicked pause to reach Redis")
        self.script("window.fetch = window.__fetch")
        self.wait(lambda: self.css('button.action[data-path="/api/queues/work/resume"]'), "the resume button")
        self.press('button.action[data-path="/api/queues/work/resume"]')
        self.until(lambda: not self.paused("work"), "work to be resumed in Redis")
        log("  the button held for 1.5 s through live refreshes acted when released")

    def typing_survives_live_updates(self):
        """While the worker moves jobs of the queue shown, what the user types in the search box stays."""
        log("typing in the search box of a busy queue's page")
        # Refreshes take 0.8 s to come back, as on a slow link: one is on its way whenever the box gets the focus,
        # and must not land over what is being typed.
        self.slow_refreshes()
        self.press("input[name=q]")
        moving = self.pending("work")
        for letter in "sleep":
            # As a keyboard does: to whatever has the focus now.
            self.driver.switch_to.active_element.send_keys(letter)
            time.sleep(0.4)
        check(self.pending("work") < moving, "the worker moved no job while typing: nothing was checked")
        value = self.script("const f = document.querySelector('input[name=q]'); return f ? f.value : null")
        focused = self.script("return document.activeElement && document.activeElement.name")
        check(value == "sleep" and focused == "q",
              f"the search box lost what was typed ('{value}', focus on '{focused}') to a live refresh")
        self.script("window.fetch = window.__fetch")
        refreshed = self.script("return document.body.dataset.refreshed || ''")
        self.press("h1")
        self.wait(lambda: self.script("return document.body.dataset.refreshed || ''") != refreshed,
                  "a refresh once the search box is left")
        log("  what was typed stayed; the page refreshed once the box was left")

    def refusals(self):
        log("refusals: an action without the CSRF token or without credentials changes nothing")
        self.open("/queues/idle", "queue")
        target = "/api/jobs/idle/idle-2/cancel"
        pause = "/api/queues/idle/pause"

        def snapshot():
            return (self.job("idle/idle-2"), self.counts("idle"), self.redis.hgetall(self.key("idle", "meta")))

        before = snapshot()
        check(before[0].get("status") == "pending", "idle-2 is not pending")
        fetch = """
            const [path, headers, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
            fetch(path, { method: 'POST', credentials: 'same-origin', headers })
              .then((r) => r.text().then((t) => done([r.status, t])), (e) => done([0, String(e)]));
        """
        answers = {}
        for name, path, headers in [
            ("browser, no token", target, {}),
            ("browser, wrong token", target, {"X-CSRF-Token": "0" * 32}),
            ("browser pause, no token", pause, {}),
        ]:
            status, text = self.driver.execute_async_script(fetch, path, headers)
            check(status == 403 and '"csrf"' in text, f"{name}: {status} {text}")
            answers[name] = status
        cookies = {cookie["name"]: cookie["value"] for cookie in self.driver.get_cookies()}
        session = "conveyor_session=" + cookies["conveyor_session"]
        both = session + "; conveyor_csrf=" + cookies["conveyor_csrf"]
        for name, path, headers, bearer, code in [
            ("no credentials", target, {}, False, 401),
            ("wrong bearer token", target, {"Authorization": "Bearer wrong"}, False, 401),
            ("no credentials, pause", pause, {}, False, 401),
            ("session cookie, no CSRF cookie or token", target, {"Cookie": session}, False, 403),
            ("session and CSRF cookies, no token", target, {"Cookie": both}, False, 403),
            ("session cookie, token without its cookie", target,
             {"Cookie": session, "X-CSRF-Token": cookies["conveyor_csrf"]}, False, 403),
        ]:
            status, text = self.http("POST", path, headers=headers, bearer=bearer)
            check(status == code, f"{name}: {status} {text}")
            answers[name] = status
        after = snapshot()
        check(after == before, f"Redis changed: {before} -> {after}")
        # The same request with the page's token is accepted: the refusals above were for the token alone.
        status, text = self.driver.execute_async_script(
            fetch, target, {"X-CSRF-Token": self.script("return document.querySelector('meta[name=csrf-token]').content")})
        check(status == 200, f"with the page's token: {status} {text}")
        check(self.job("idle/idle-2").get("status") == "cancelled", "idle-2 is not cancelled with the token")
        self.measured["refusals"] = answers
        for name, status in answers.items():
            log(f"  {name}: {status}")
        log("  Redis unchanged by all of them; with the page's token: 200")

    def first_queue(self):
        """An overview opened before any queue exists shows the first one without a reload, then goes live."""
        log("an empty overview: the first queue appears without a reload, and then updates live")
        base = self.empty_base
        self.driver.get(base + "/")
        self.wait(lambda: self.script("return document.body && document.body.dataset.page") == "overview",
                  "the empty overview")
        check("No queues yet" in self.one("main").text, "the empty overview's text")
        marker = self.mark()
        time.sleep(1)

        def enqueue(n):
            request = urllib.request.Request(
                base + "/api/jobs", data=json.dumps({"type": "noop", "queue": "first", "payload": {"n": n}}).encode(),
                method="POST", headers={"Content-Type": "application/json", "Authorization": "Bearer " + self.token})
            with urllib.request.urlopen(request, timeout=WAIT) as answer:
                check(answer.status == 201, f"enqueue: {answer.status}")

        enqueue(1)
        self.wait(lambda: self.css('#queues tr[data-queue="first"]'), "the first queue's row", timeout=15)
        self.still(marker, "the first queue")
        self.connected()
        time.sleep(1)
        cell = '(document.querySelector(\'#queues tr[data-queue="first"] td[data-status="pending"]\') || {}).textContent'
        latency = self.measure_live("the new queue's count", lambda: enqueue(2), f"{cell} === '2'")
        self.measured["live_new_queue_ms"] = round(latency)
        check(latency <= LIVE_LIMIT_MS, f"the new queue's update took {latency:.0f} ms")

    def final_overview(self):
        self.open("/", "overview")
        self.connected()
        time.sleep(1)
        self.no_script_ran("the overview at the end")
        self.shot("12-overview-end")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--profile", required=True, help="Chromium's profile folder (made anew)")
    parser.add_argument("--namespace", default="conveyor")
    parser.add_argument("--empty-base-url", required=True, help="a conveyor serve on a namespace with no queue yet")
    arguments = parser.parse_args()
    # SIGTERM (the Swift test giving up) ends the browser too, through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    dashboard = Dashboard(arguments)
    log(f"browser: {dashboard.driver.capabilities.get('browserName')} "
        f"{dashboard.driver.capabilities.get('browserVersion')}")
    steps = [
        dashboard.sign_in, dashboard.overview, dashboard.queue_page, dashboard.retry, dashboard.job_pages,
        dashboard.hostile, dashboard.schedules, dashboard.workers, dashboard.live_updates, dashboard.pause,
        dashboard.refusals, dashboard.first_queue, dashboard.final_overview,
    ]
    try:
        for step in steps:
            started = time.monotonic()
            step()
            log(f"  ok ({time.monotonic() - started:.1f} s)")
        log("measured: " + json.dumps(dashboard.measured, sort_keys=True))
        log(f"dashboard_browser: all {len(steps)} steps passed")
        return 0
    except Exception as error:
        log(f"FAILED in {step.__name__}: {error}")
        traceback.print_exc(file=sys.stdout)
        try:
            log(f"  at {dashboard.driver.current_url}")
            dashboard.shot("failure")
            log("  page: " + dashboard.driver.find_element(By.TAG_NAME, "body").text[:2000])
        except Exception:
            pass
        return 1
    finally:
        dashboard.quit()


if __name__ == "__main__":
    sys.exit(main())
