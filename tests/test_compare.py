#!/usr/bin/env python3
"""`hymeval compare` and `hymeval history` on constructed results directories:
a real regression exits 1, a change within sampling noise 0, an identical
rerun 0, a metric missing from the current run 1 (reported as "missing"),
malformed or unusable input 2; paired per-example flips (McNemar, exact
binomial) catch a regression the unpaired z-test cannot see; tolerances;
throughput and cache metrics by ratio; compare.md; the history table and
plot."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_png import PngError, decode_png  # noqa: E402  (the independent PNG decoder)

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")

results = []


def check(name, ok, detail=""):
    ok = bool(ok)
    results.append(ok)
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))
    return ok


def write_run(path, scores=None, extra_metrics=(), samples=True, started="2026-01-01T00:00:00Z"):
    """A results directory. scores: {(task, metric): {example id: 0/1}} becomes
    samples.jsonl lines and summary entries (mean, binomial stderr, n);
    extra_metrics: summary entries given as they are."""
    os.makedirs(path, exist_ok=True)
    metrics, by_id = [], {}
    for (task, metric), per_id in (scores or {}).items():
        vals = list(per_id.values())
        n = len(vals)
        p = sum(vals) / n
        metrics.append({"task": task, "metric": metric, "group": "", "value": p,
                        "stderr": math.sqrt(p * (1 - p) / n), "n": n})
        for ex, v in per_id.items():
            line = by_id.setdefault((task, ex), {"task": task, "kind": "multiple_choice", "id": ex, "group": "",
                                                 "scores": {}})
            line["scores"][metric] = float(v)
    metrics.extend(extra_metrics)
    with open(os.path.join(path, "summary.json"), "w") as f:
        json.dump({"metrics": metrics, "cells": [], "errors": {}}, f)
    with open(os.path.join(path, "run.json"), "w") as f:
        json.dump({"started": started, "engine_git_revision": "abc1234"}, f)
    sp = os.path.join(path, "samples.jsonl")
    if samples:
        with open(sp, "w") as f:
            for line in by_id.values():
                f.write(json.dumps(line) + "\n")
    elif os.path.exists(sp):
        os.remove(sp)
    return path


def binary(prefix, n, ones):
    return {f"{prefix}{i}": int(i < ones) for i in range(n)}


def compare(*args):
    p = subprocess.run([BIN, "compare", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def row(out, task, metric):
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[0] == task and parts[1] == metric:
            return line
    return ""


def binom_two_sided(b, c):
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def main():
    tmp = tempfile.mkdtemp(prefix="hymeval-compare-")
    d = lambda name: os.path.join(tmp, name)
    try:
        # 1. a real regression: 0.80 -> 0.68 on 500 examples each (different examples: z-test)
        write_run(d("base1"), {("arc", "acc"): binary("a", 500, 400)})
        write_run(d("cur1"), {("arc", "acc"): binary("b", 500, 340)})
        code, out, err = compare(d("base1"), d("cur1"))
        check("a 12-point drop on 500 examples is a regression (exit 1)", code == 1, out + err)
        check("... reported as REGRESSED with a z-test", "REGRESSED" in row(out, "arc", "acc")
              and " z " in row(out, "arc", "acc"), row(out, "arc", "acc"))
        check("... compare.md is written in CURRENT's directory",
              os.path.exists(d("cur1/compare.md")) and "REGRESSED" in open(d("cur1/compare.md")).read())
        code, out, err = compare(d("base1"), d("cur1"), "--tolerance", "acc=0.2")
        check("--tolerance acc=0.2 accepts it (exit 0, within tolerance)",
              code == 0 and "within tolerance" in row(out, "arc", "acc"), out + err)
        code, out, err = compare(d("base1"), d("cur1"), "--tolerance", "arc/acc=0.2", "--tolerance", "acc=0")
        check("a task/metric tolerance beats a metric one", code == 0, out + err)
        code, out, err = compare(d("base1/summary.json"), d("cur1/summary.json"), "--out", d("out.md"))
        check("summary.json paths work and --out FILE gets the table", code == 1 and os.path.exists(d("out.md")),
              out + err)

        # 2. within noise: 0.80 -> 0.76 on 50 examples
        write_run(d("base2"), {("arc", "acc"): binary("a", 50, 40)})
        write_run(d("cur2"), {("arc", "acc"): binary("b", 50, 38)})
        code, out, err = compare(d("base2"), d("cur2"))
        check("a 4-point drop on 50 examples is noise (exit 0)", code == 0 and "ok" in row(out, "arc", "acc"),
              out + err)

        # 3. an identical rerun
        shutil.copytree(d("base1"), d("rerun1"))
        code, out, err = compare(d("base1"), d("rerun1"))
        check("an identical rerun passes (exit 0)", code == 0 and "REGRESSED" not in out, out + err)
        check("... paired on the same examples (McNemar b=0 c=0)", "McNemar b=0 c=0" in row(out, "arc", "acc"),
              row(out, "arc", "acc"))

        # 4. a metric missing from the current run
        write_run(d("base4"), {("piqa", "acc"): binary("x", 100, 60), ("piqa", "acc_norm"): binary("x", 100, 65)})
        write_run(d("cur4"), {("piqa", "acc"): binary("x", 100, 60)})
        code, out, err = compare(d("base4"), d("cur4"))
        check("a metric missing from CURRENT fails (exit 1) and says missing",
              code == 1 and "missing" in row(out, "piqa", "acc_norm"), out + err)
        code, out, err = compare(d("cur4"), d("base4"))
        check("a metric only CURRENT has is new, not a failure (exit 0)",
              code == 0 and "new" in row(out, "piqa", "acc_norm"), out + err)

        # 5. unusable input
        os.makedirs(d("bad5"))
        with open(d("bad5/summary.json"), "w") as f:
            f.write('{"metrics": [ {"task": "arc", ')
        code, out, err = compare(d("base1"), d("bad5"))
        check("a malformed summary.json exits 2 naming the file", code == 2 and "summary.json" in err, err)
        code, out, err = compare(d("base1"), d("nowhere"))
        check("a missing directory exits 2", code == 2 and "nowhere" in err, err)
        with open(d("bad5/summary.json"), "w") as f:
            json.dump({"metrics": [{"task": "arc", "metric": "acc", "value": "high"}]}, f)
        code, out, err = compare(d("base1"), d("bad5"))
        check("a summary entry without a numeric value exits 2", code == 2 and "metrics[0]" in err, err)
        write_run(d("other5"), {("hellaswag", "acc"): binary("h", 20, 10)})
        code, out, err = compare(d("base1"), d("other5"))
        check("no metric in common exits 2", code == 2 and "in common" in err, err)
        shutil.copytree(d("base1"), d("badsamples5"))
        with open(d("badsamples5/samples.jsonl"), "a") as f:
            f.write('{"task": "arc", "id": \n')
        code, out, err = compare(d("base1"), d("badsamples5"))
        check("a malformed samples.jsonl exits 2", code == 2 and "samples.jsonl" in err, err)
        code, out, err = compare(d("base1"), d("cur1"), "--tolerance", "acc")
        check("a malformed --tolerance exits 2", code == 2 and "--tolerance" in err, err)
        code, out, err = compare(d("base1"))
        check("one directory only exits 2", code == 2, err)

        # 6. paired flips: 200 examples, 12 right -> wrong and 1 wrong -> right (0.500 -> 0.445)
        base_scores = binary("q", 200, 100)
        cur_scores = dict(base_scores)
        for i in range(12):
            cur_scores[f"q{i}"] = 0
        cur_scores["q150"] = 1
        write_run(d("base6"), {("winogrande", "acc"): base_scores})
        write_run(d("cur6"), {("winogrande", "acc"): cur_scores})
        code, out, err = compare(d("base6"), d("cur6"))
        r = row(out, "winogrande", "acc")
        expected_p = binom_two_sided(12, 1)
        check("paired flips (b=12, c=1) are a regression the z-test would miss (exit 1)",
              code == 1 and "REGRESSED" in r and "McNemar b=12 c=1" in r, out + err)
        check(f"... with the exact binomial p = {expected_p:.4f}", f"{expected_p:.4f}" in r, r)
        write_run(d("base6u"), {("winogrande", "acc"): base_scores}, samples=False)
        write_run(d("cur6u"), {("winogrande", "acc"): cur_scores}, samples=False)
        code, out, err = compare(d("base6u"), d("cur6u"))
        r = row(out, "winogrande", "acc")
        check("the same summaries without samples: z-test, not significant (exit 0)",
              code == 0 and " z " in r and "ok" in r, out + err)
        se1, se2 = math.sqrt(0.5 * 0.5 / 200), math.sqrt(0.445 * 0.555 / 200)
        z_p = math.erfc(abs(0.445 - 0.5) / math.sqrt(se1 ** 2 + se2 ** 2) / math.sqrt(2))
        check(f"... z-test p = {z_p:.4f} as lm-eval's formula gives", f"{z_p:.4f}" in r, r)
        code, out, err = compare(d("base6"), d("cur6"), "--tolerance", "acc=0.1")
        check("paired regression within a 0.1 tolerance passes", code == 0, out + err)

        # 7. a paired improvement
        code, out, err = compare(d("cur6"), d("base6"))
        check("the reverse direction is an improvement (exit 0)",
              code == 0 and "improved" in row(out, "winogrande", "acc"), out + err)

        # 8. throughput and cache by ratio; acc_bytes stays an accuracy
        def speed(v, mb, accb):
            return [{"task": "bench", "metric": "prefill_tokens_per_s", "group": "", "value": v, "stderr": 0, "n": 5},
                    {"task": "cache", "metric": "cache_bytes", "group": "", "value": mb, "stderr": 0, "n": 1},
                    {"task": "piqa", "metric": "acc_bytes", "group": "", "value": accb, "stderr": 0.02, "n": 500}]
        write_run(d("base8"), extra_metrics=speed(1000.0, 100.0, 0.70), samples=False)
        write_run(d("slow8"), extra_metrics=speed(900.0, 100.0, 0.70), samples=False)
        write_run(d("near8"), extra_metrics=speed(980.0, 103.0, 0.69), samples=False)
        write_run(d("big8"), extra_metrics=speed(1000.0, 110.0, 0.70), samples=False)
        code, out, err = compare(d("base8"), d("slow8"))
        check("throughput 10% lower is a regression (exit 1)",
              code == 1 and "REGRESSED" in row(out, "bench", "prefill_tokens_per_s")
              and "-10.0%" in row(out, "bench", "prefill_tokens_per_s"), out + err)
        code, out, err = compare(d("base8"), d("near8"))
        check("throughput 2% lower, cache 3% larger, acc_bytes -0.01 (noise): no regression (exit 0)",
              code == 0, out + err)
        check("... acc_bytes is compared as an accuracy (z-test), not as a size",
              " z " in row(out, "piqa", "acc_bytes"), row(out, "piqa", "acc_bytes"))
        code, out, err = compare(d("base8"), d("big8"))
        check("a cache 10% larger is a regression (lower is better, exit 1)",
              code == 1 and "REGRESSED" in row(out, "cache", "cache_bytes"), out + err)
        code, out, err = compare(d("base8"), d("slow8"), "--tolerance", "prefill_tokens_per_s=0.15")
        check("--tolerance prefill_tokens_per_s=0.15 accepts a 10% drop", code == 0, out + err)
        code, out, err = compare(d("slow8"), d("base8"))
        check("throughput 11% higher is an improvement",
              code == 0 and "improved" in row(out, "bench", "prefill_tokens_per_s"), out + err)

        # history: three runs given out of time order
        write_run(d("h_mon"), {("arc", "acc"): binary("a", 100, 50)}, started="2026-03-02T01:00:00Z")
        write_run(d("h_tue"), {("arc", "acc"): binary("a", 100, 60)}, started="2026-03-03T01:00:00Z")
        write_run(d("h_wed"), {("arc", "acc"): binary("a", 100, 70),
                               ("piqa", "acc"): binary("p", 100, 55)}, started="2026-03-04T01:00:00Z")
        os.makedirs(d("hist"))
        p = subprocess.run([BIN, "history", d("h_wed"), d("h_mon"), d("h_tue"), "--by-time", "--out", d("hist")],
                           capture_output=True, text=True, timeout=120)
        check("history exits 0", p.returncode == 0, p.stderr)
        header = p.stdout.splitlines()[0].split() if p.stdout else []
        check("history orders the runs by start time with --by-time", header[2:5] == ["h_mon", "h_tue", "h_wed"],
              header)
        arc = row(p.stdout, "arc", "acc").split()
        check("one row per metric, a value per run and the change", arc[2:6] == ["0.5000", "0.6000", "0.7000",
                                                                                  "+0.2000"], arc)
        piqa = row(p.stdout, "piqa", "acc").split()
        check("a metric absent from earlier runs shows '-'", piqa[2:4] == ["-", "-"], piqa)
        md = open(d("hist/history.md")).read() if os.path.exists(d("hist/history.md")) else ""
        check("history.md holds the table", "| arc | acc | 0.5000 | 0.6000 | 0.7000 | +0.2000 |" in md, md)
        try:
            w, h, rows, _ = decode_png(open(d("hist/history.png"), "rb").read())
            check("history.png decodes", w > 300 and h > 200, (w, h))
        except (OSError, PngError) as e:
            check("history.png decodes", False, str(e))
        p = subprocess.run([BIN, "history", d("h_mon"), d("h_tue"), "--out", d("hist")], capture_output=True,
                           text=True, timeout=120)
        header = p.stdout.splitlines()[0].split() if p.stdout else []
        check("without --by-time the runs keep the order given", header[2:4] == ["h_mon", "h_tue"], header)
        p = subprocess.run([BIN, "history", d("nowhere")], capture_output=True, text=True, timeout=120)
        check("history of a missing directory fails with a message", p.returncode != 0 and "nowhere" in p.stderr,
              p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = results.count(False)
    print(f"\n{len(results) - failed}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
