"""Headless Debian Chromium driven by Selenium through Debian's
chromedriver (both installed by `scripts/setup --test`), for the scripts
that look at weir's output in a real browser."""
from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def chromium(*extra_args: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *extra_args):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
