"""Helpers shared by tests: racing threads, the SMS outbox, and phone sign-in in the browser."""

from __future__ import annotations

import re
import threading

from django.db import connection

from yilian.notifications.senders import ConsoleSmsSender

IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def race(n: int, fn) -> list:
    """Run ``fn(i)`` in ``n`` threads released together; each result or the exception it raised.

    Each thread uses (and closes) its own database connection, so this needs PostgreSQL."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def last_sms_code(phone: str) -> str:
    """The six-digit code of the last SMS the console sender sent to ``phone``."""
    bodies = [body for to, body in ConsoleSmsSender.outbox if to == phone]
    assert bodies, "no sign-in code was sent"
    return re.search(r"\d{6}", bodies[-1]).group(0)


def phone_context(browser):
    """A phone-sized browser context (390×844, touch, zh-CN)."""
    return browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )


def patient_signs_in(page, base_url: str, phone: str) -> None:
    """Sign a patient in on the H5 page with phone + SMS code (needs the ``immediate_tasks`` fixture)."""
    page.goto(f"{base_url}/accounts/patient/login/")
    page.fill("#id_phone", phone)
    page.click("button:has-text('获取验证码')")
    page.wait_for_selector("#id_code")
    page.fill("#id_code", last_sms_code(phone))
    page.click("button:has-text('登录')")
    page.wait_for_url(re.compile(r".*/h5/$"))
