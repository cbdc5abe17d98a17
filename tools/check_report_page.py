"""Renders the drill's report page in headless Chromium and checks what a person would see.

Chromium (the Debian package) loads the page from the file, writes a screenshot (PNG) and
the DOM it built. The checks: the screenshot is a real PNG of a drawn page (not a blank
one), the verdict matches the JSON report, and the page shows one row per check and per
app server, one timeline event per timeline entry and one bar per region-switch plan step. Exits 1 naming what is missing.

Usage: check_report_page.py --html PAGE --json REPORT --png OUT
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

CHROMIUM_SECONDS = 90
# The screenshot of the report must be at least this many times the size of a blank page's
# (measured with the same Chromium and window): a page that drew nothing compresses to a
# few KB, the report with its tables and timeline to far more.
BLANK_FACTOR = 2


def chromium(page: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="report-page-") as profile:
        return subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1280,2000",
                *args,
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=CHROMIUM_SECONDS,
            check=False,
        )


def blank_png_bytes() -> int:
    with tempfile.TemporaryDirectory(prefix="blank-page-") as directory:
        page = pathlib.Path(directory) / "blank.html"
        page.write_text("<!DOCTYPE html><html><body></body></html>")
        shot = pathlib.Path(directory) / "blank.png"
        chromium(page, f"--screenshot={shot}")
        return shot.stat().st_size if shot.exists() else 0


def problems(dom: str, png: pathlib.Path, report: dict, blank_bytes: int) -> list:
    found = []
    data = png.read_bytes() if png.exists() else b""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        found.append(f"{png} is not a PNG")
    elif len(data) < BLANK_FACTOR * blank_bytes:
        found.append(f"{png} is {len(data)} bytes, a blank page's is {blank_bytes}: nothing was drawn")
    checks = report.get("checks", [])
    verdict = "PASSED" if checks and all(c["passed"] for c in checks) else "FAILED"
    if not re.search(rf'id="verdict"[^>]*>\s*Failover drill {verdict}', dom):
        found.append(f"#verdict does not say {verdict}")
    for what, pattern, wanted in [
        ("checks", r'<tr class="check (pass|fail)">', len(checks)),
        ("app servers", r'<tr class="server">', len(report.get("instances", []))),
        ("timeline events", r'<g class="event ', len(report.get("timeline", []))),
        ("plan steps", r'<g class="step">', len((report.get("plan") or {}).get("timeline") or [])),
    ]:
        shown = len(re.findall(pattern, dom))
        if shown != wanted:
            found.append(f"the page shows {shown} {what}, the report has {wanted}")
    for section in ["figures", "timeline", "servers", "checks"]:
        if f'id="{section}"' not in dom:
            found.append(f"no #{section} in the rendered page")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", required=True, type=pathlib.Path)
    parser.add_argument("--json", required=True, type=pathlib.Path)
    parser.add_argument("--png", required=True, type=pathlib.Path)
    args = parser.parse_args()
    report = json.loads(args.json.read_text())
    args.png.unlink(missing_ok=True)
    shot = chromium(args.html, f"--screenshot={args.png.resolve()}")
    if shot.returncode != 0:
        print(f"chromium --screenshot failed ({shot.returncode}): {shot.stderr[-2000:]}", file=sys.stderr)
        return 1
    dom = chromium(args.html, "--dump-dom")
    if dom.returncode != 0:
        print(f"chromium --dump-dom failed ({dom.returncode}): {dom.stderr[-2000:]}", file=sys.stderr)
        return 1
    found = problems(dom.stdout, args.png, report, blank_png_bytes())
    for problem in found:
        print(f"report page: {problem}", file=sys.stderr)
    if found:
        return 1
    print(
        f"report page: rendered by chromium to {args.png} ({args.png.stat().st_size} bytes): "
        f"{len(report.get('checks', []))} checks, {len(report.get('instances', []))} servers, "
        f"{len(report.get('timeline', []))} timeline events, "
        f"{len((report.get('plan') or {}).get('timeline') or [])} plan steps"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
