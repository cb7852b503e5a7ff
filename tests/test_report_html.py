#!/usr/bin/env python3
"""report.html in a real browser: `hymeval report` on a constructed results
directory (every section: run, errors, summary, heatmap, curves, groups,
throughput, cache, ERF, drift with their tables and curves, other) gives a self-contained page (no scripts, no
external resources), which headless Chromium loads without console errors
and renders to a non-trivial screenshot showing the heatmap's colours.

Needs the `chromium` binary (Debian package "chromium"); without it the test
is skipped (exit 77). HYMEVAL_KEEP_SCREENSHOT=PATH keeps the screenshot."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_png import PngError, decode_png, make_results  # noqa: E402

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")
SKIP = 77

results = []


def check(name, ok, detail=""):
    ok = bool(ok)
    results.append(ok)
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))
    return ok


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browser(exe, profile, *args):
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def main():
    exe = chromium_binary()
    if not exe:
        print("skip: chromium is absent (apt-get install chromium to run this test)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="hymeval-html-")
    try:
        out = os.path.join(tmp, "results")
        make_results(out)
        p = subprocess.run([BIN, "report", out], capture_output=True, text=True, timeout=300)
        if not check("hymeval report exits 0", p.returncode == 0, p.stderr):
            return 1
        html_path = os.path.join(out, "report.html")
        html = open(html_path, encoding="utf-8").read()

        # self-contained: nothing to fetch, nothing to run
        check("no <script>", "<script" not in html.lower())
        refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
        check("every link is an in-page anchor (no external resource)", all(r.startswith("#") for r in refs),
              [r for r in refs if not r.startswith("#")])
        check("no stylesheet links, @import or url(...) fetches",
              "<link" not in html.lower() and "@import" not in html and not re.search(r"url\((?!#)", html))
        for section in ("Run", "Errors", "Summary", "Needle-in-a-haystack heatmaps", "Accuracy by context length",
                        "Results per group", "Throughput", "Cache size", "Effective receptive field", "RoPE drift",
                        "Other metrics"):
            check(f"section \"{section}\" is present", f">{section}</h2>" in html)
        check("pictures are inline SVG (the measurement curves included)", html.count("<svg ") >= 12,
              html.count("<svg "))
        check("the unknown summary key lands in Other metrics", "effective_length" in html)

        profile = os.path.join(tmp, "profile")
        p = browser(exe, profile, "--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + html_path)
        check("chromium loads the page (--dump-dom)", p.returncode == 0 and "<svg" in p.stdout,
              p.stderr[-1500:])
        console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
        check("no console messages or errors", not console, console[:5])
        check("the DOM holds every table row the file has", p.stdout.count("<tr>") >= html.count("<tr>"),
              (p.stdout.count("<tr>"), html.count("<tr>")))

        shot = os.path.join(tmp, "screenshot.png")
        p = browser(exe, profile, f"--screenshot={shot}", "--window-size=1400,3000", "file://" + html_path)
        if not check("chromium writes a screenshot", p.returncode == 0 and os.path.exists(shot), p.stderr[-1500:]):
            return 1
        keep = os.environ.get("HYMEVAL_KEEP_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)
        try:
            w, h, rows, info = decode_png(open(shot, "rb").read(), allow_rgba=True)
        except PngError as e:
            check("the screenshot decodes", False, str(e))
            return 1
        bpp = info["bpp"]
        check("the screenshot is 1400 x 3000", (w, h) == (1400, 3000), (w, h))
        colours, inked = set(), 0
        near = lambda px, c: sum(abs(px[i] - c[i]) for i in range(3)) <= 12
        heat = {"green": 0, "yellow": 0, "red": 0}
        targets = {"green": (0x0C, 0xD7, 0x9F), "yellow": (0xEB, 0xB8, 0x39), "red": (0xF0, 0x49, 0x6E)}
        for y in range(0, h, 2):
            line = rows[y]
            for x in range(0, w * bpp, 2 * bpp):
                px = tuple(line[x:x + 3])
                colours.add(px)
                if min(px) < 235:
                    inked += 1
                for name, c in targets.items():
                    if near(px, c):
                        heat[name] += 1
        sampled = (h // 2) * (w // 2)
        check("the screenshot is not blank (>5% inked pixels, many colours)",
              inked > 0.05 * sampled and len(colours) > 100, (inked / sampled, len(colours)))
        check("the heatmap's green, yellow and red show on the page",
              all(v > 300 for v in heat.values()), heat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = results.count(False)
    print(f"\n{len(results) - failed}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
