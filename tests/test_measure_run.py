#!/usr/bin/env python3
"""The measurement kinds through `hymeval run` on the embedded default model:
- niah_shift at shift 0 in fp32 gives exactly the plain niah task's answers
  and accuracy on the same examples (same fields, same seed), and its
  summary keys (metric, group = "<mode>@<shift>") are exactly the expected
  ones, with n = the NIAH examples per (mode, shift);
- throughput gives one example per (batch, context) with positive, finite
  figures in samples.jsonl and summary.json, and its shape in extra;
- a bad field of either kind (the nested niah definition included) is an
  error naming the file, the line, the task and the field;
- the report of the run holds the measurement pictures (decoded with
  test_png's independent PNG decoder) and tables;
- `hymeval erf|drift|cache` run one such task without a task file and give
  the summary `hymeval run` gives for the same task line; their errors (an
  unknown field, a value that is not JSON, results already there) are
  clear, and --resume finishes instead of redoing."""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_png import PngError, decode_png  # noqa: E402

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")
ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")
MODEL = os.path.join(ROOT, "models", "default")

NIAH = {"variant": "single_1", "lengths": [384], "depths": [0, 50, 100], "max_new_tokens": 8}
MODES, SHIFTS = ["fp32", "bf16-hf"], [0, 1000]
TASKS = [
    {"name": "plain", "kind": "niah", **NIAH},
    {"name": "ns", "kind": "niah_shift", "niah": NIAH, "shifts": SHIFTS, "modes": MODES},
    {"name": "tp", "kind": "throughput", "batches": [1, 2], "contexts": [32, 64], "decode": 4, "repeats": 2},
    {"name": "drift", "kind": "rope_drift", "length": 24, "num_sequences": 1, "deltas": [0, 4, 16, 64],
     "modes": ["fp32", "bf16-hf"], "source": "random"},
    {"name": "erf", "kind": "erf", "lengths": [24, 48], "targets": 1, "source": "random"},
    {"name": "cache", "kind": "cache", "lengths": [64, 256]},
]

results = []


def check(name, ok, detail=""):
    ok = bool(ok)
    results.append(ok)
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))
    return ok


def write_tasks(path, tasks, header=""):
    with open(path, "w") as f:
        f.write(header)
        for t in tasks:
            f.write(json.dumps(t) + "\n")


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def check_field_errors(tmp):
    """A bad field on line 3 of a file: the message names file:3, the task and the field."""
    cases = [
        ({"name": "tp", "kind": "throughput", "batches": [1, 0]}, 'task "tp": field "batches"'),
        ({"name": "tp", "kind": "throughput", "decode": "many"}, 'task "tp": field "decode"'),
        ({"name": "tp", "kind": "throughput", "batch": [1]}, 'task "tp": unknown field "batch" for kind "throughput"'),
        ({"name": "ns", "kind": "niah_shift", "niah": {**NIAH, "lengths": "512"}}, 'task "ns.niah": field "lengths"'),
        ({"name": "ns", "kind": "niah_shift", "niah": NIAH, "shifts": [5, 5]}, 'task "ns": field "shifts"'),
    ]
    for bad, want in cases:
        path = os.path.join(tmp, "bad.jsonl")
        write_tasks(path, [{"name": "ok", "kind": "niah", **NIAH}, bad], header="# line 1 is a comment\n")
        p = subprocess.run([BIN, "run", "--model", MODEL, "--tasks", path, "--dry-run"], capture_output=True,
                           text=True, timeout=300)
        check(f"bad field -> {want}", p.returncode == 1 and f"{path}:3: {want}" in p.stderr, p.stderr[-400:])


def check_commands(tmp, run_metrics):
    """The measurement commands against the same task lines run by `hymeval run` (run_metrics)."""
    for cmd, task in (("cache", TASKS[5]), ("drift", TASKS[3]), ("erf", TASKS[4])):
        out = os.path.join(tmp, "cmd_" + cmd)
        sets = []
        for k, v in task.items():
            if k not in ("name", "kind"):
                sets += ["--set", f"{k}={json.dumps(v)}"]
        p = subprocess.run([BIN, cmd, MODEL, "--out", out] + sets, capture_output=True, text=True, timeout=600)
        if not check(f"hymeval {cmd} runs", p.returncode == 0, p.stderr[-1000:]):
            continue
        written = lines(os.path.join(out, "task.jsonl"))
        check(f"hymeval {cmd}: OUT/task.jsonl is the one task, kind {task['kind']}",
              len(written) == 1 and written[0]["kind"] == task["kind"] and written[0]["name"] == cmd, written)
        run = json.load(open(os.path.join(out, "run.json")))
        check(f"hymeval {cmd}: run.json names OUT/task.jsonl", run["tasks_file"].endswith("task.jsonl"), run["tasks_file"])
        got = {(m["metric"], m["group"]): m["value"] for m in json.load(open(os.path.join(out, "summary.json")))["metrics"]}
        want = {(m, g): v for (t, m, g), v in run_metrics.items() if t == task["name"]}
        # throughput-like timing fields are not among these kinds; every value is deterministic
        same = set(got) == set(want) and all(math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-12) for k in want)
        check(f"hymeval {cmd}: summary == hymeval run's for the same task line ({len(want)} metrics)", same,
              sorted(set(got) ^ set(want))[:5])
        p = subprocess.run([BIN, cmd, MODEL, "--out", out] + sets, capture_output=True, text=True, timeout=600)
        check(f"hymeval {cmd}: results already there without --resume: refused (exit 1)",
              p.returncode == 1 and "--resume" in p.stderr, p.stderr[-300:])
        n = len(lines(os.path.join(out, "samples.jsonl")))
        p = subprocess.run([BIN, cmd, MODEL, "--out", out, "--resume"] + sets, capture_output=True, text=True,
                           timeout=600)
        check(f"hymeval {cmd} --resume of a finished run adds nothing",
              p.returncode == 0 and len(lines(os.path.join(out, "samples.jsonl"))) == n, p.stderr[-300:])
    out = os.path.join(tmp, "cmd_bad")
    p = subprocess.run([BIN, "erf", MODEL, "--out", out, "--set", "lenghts=[24]"], capture_output=True, text=True)
    check("hymeval erf --set with an unknown field: exit 1 naming it and the file",
          p.returncode == 1 and 'unknown field "lenghts" for kind "erf"' in p.stderr and "task.jsonl:1" in p.stderr,
          p.stderr[-300:])
    p = subprocess.run([BIN, "drift", MODEL, "--out", out, "--set", "length=[24"], capture_output=True, text=True)
    check("hymeval drift --set with a value that is not JSON: usage error (exit 2)",
          p.returncode == 2 and "is not JSON" in p.stderr, p.stderr[-300:])
    p = subprocess.run([BIN, "cache", "--help"], capture_output=True, text=True)
    check("hymeval cache --help", p.returncode == 0 and "--set KEY=JSON" in p.stdout)


def main():
    tmp = tempfile.mkdtemp(prefix="hymeval-measure-")
    try:
        check_field_errors(tmp)
        tasks = os.path.join(tmp, "measure.jsonl")
        write_tasks(tasks, TASKS)
        out = os.path.join(tmp, "out")
        p = subprocess.run([BIN, "run", "--model", MODEL, "--tasks", tasks, "--out", out], capture_output=True,
                           text=True, timeout=1200)
        if not check("the measurement run succeeds", p.returncode == 0, p.stderr[-2000:]):
            return 1
        samples = lines(os.path.join(out, "samples.jsonl"))
        summary = json.load(open(os.path.join(out, "summary.json")))
        check("no example failed", not any("error" in s for s in samples),
              [s.get("error") for s in samples if "error" in s][:3])
        metrics = {(m["task"], m["metric"], m["group"]): m for m in summary["metrics"]}
        check_commands(tmp, {k: m["value"] for k, m in metrics.items()})

        # ---- niah_shift against the plain niah task
        plain = {s["id"]: s for s in samples if s["task"] == "plain"}
        shifted = [s for s in samples if s["task"] == "ns"]
        check("niah_shift: one example per mode x shift x NIAH example",
              len(shifted) == len(MODES) * len(SHIFTS) * len(plain) and len(plain) == 3, (len(shifted), len(plain)))
        want_ids = {f"{m}@{d}/{i}" for m in MODES for d in SHIFTS for i in plain}
        check("niah_shift: example ids are <mode>@<shift>/<niah id>", {s["id"] for s in shifted} == want_ids)
        at0 = {s["extra"]["niah_id"]: s for s in shifted if s["group"] == "fp32@0"}
        check("fp32 at shift 0: the same prompts' answers as the plain niah task",
              set(at0) == set(plain) and all(at0[i]["extra"]["prediction"] == plain[i]["prediction"] for i in plain),
              [(at0[i]["extra"]["prediction"], plain[i]["prediction"]) for i in plain if i in at0][:2])
        check("fp32 at shift 0: the same scores per example",
              all(at0[i]["scores"] == plain[i]["scores"] for i in plain if i in at0))
        for metric in ("string_match_all", "string_match_part"):
            a, b = metrics.get(("ns", metric, "fp32@0")), metrics.get(("plain", metric, ""))
            check(f"fp32 at shift 0: {metric} equals the plain niah accuracy (value and n)",
                  a and b and a["value"] == b["value"] and a["n"] == b["n"], (a, b))
        got = {(m, g) for (t, m, g) in metrics if t == "ns"}
        want = {(m, g) for m in ("string_match_all", "string_match_part")
                for g in [""] + [f"{mode}@{d}" for mode in MODES for d in SHIFTS]}
        check("niah_shift: summary keys are exactly (metric, <mode>@<shift>)", got == want, sorted(got ^ want))
        check("niah_shift: n per (mode, shift) is the NIAH examples",
              all(metrics[("ns", "string_match_all", f"{m}@{d}")]["n"] == 3 for m in MODES for d in SHIFTS))
        check("niah_shift: no heatmap cells mix the modes and shifts",
              not any(c["task"] == "ns" for c in summary["cells"]))
        far = [s for s in shifted if s["group"] == "fp32@1000"]
        check("niah_shift: the shifted run's position ids start at the shift",
              far and all(s["extra"]["first_position"] == 1000 and s["extra"]["last_position"] > 1000 for s in far))
        print("  shifted NIAH (string_match_all, n): " + ", ".join(
            f"{m}@{d} {metrics[('ns', 'string_match_all', f'{m}@{d}')]['value']:.3f}" for m in MODES for d in SHIFTS))

        # ---- throughput
        tp = [s for s in samples if s["task"] == "tp"]
        check("throughput: one example per (batch, context)",
              sorted(s["id"] for s in tp) == sorted(f"b{b}_c{c}" for b in (1, 2) for c in (32, 64)),
              [s["id"] for s in tp])
        fig = ("prefill_tokens_per_s", "decode_tokens_per_s", "ttft_seconds", "prefill_seconds", "decode_step_ms")
        check("throughput: every figure positive and finite in samples.jsonl",
              all(math.isfinite(s["scores"][k]) and s["scores"][k] > 0 for s in tp for k in fig))
        check("throughput: and in summary.json, per pair",
              all(math.isfinite(metrics[("tp", k, s["id"])]["value"]) and metrics[("tp", k, s["id"])]["value"] > 0
                  and metrics[("tp", k, s["id"])]["n"] == 1 for s in tp for k in fig))
        check("throughput: extra records batch, context, decode, precision and device",
              all(s["extra"]["batch"] == int(s["id"][1]) and s["extra"]["context"] == int(s["id"].split("_c")[1])
                  and s["extra"]["decode"] == 4 and s["extra"]["precision"] == "fp32"
                  and s["extra"]["device"].startswith("cpu") and s["extra"]["weights_dtype"] for s in tp))
        for s in sorted(tp, key=lambda s: s["id"]):
            print(f"  throughput {s['id']}: prefill {s['scores']['prefill_tokens_per_s']:.0f} tok/s, "
                  f"decode {s['scores']['decode_tokens_per_s']:.0f} tok/s, TTFT {s['scores']['ttft_seconds']:.4f} s")

        # ---- the report's pictures and tables
        pics = ["drift-ns-accuracy.png", "throughput-tp-tokens_per_s.png", "drift-drift-attn_diff.png",
                "drift-drift-vs_fp32.png", "erf-erf-layers.png", "erf-erf-influence.png", "cache-cache-mb.png"]
        md = open(os.path.join(out, "report.md")).read()
        html = open(os.path.join(out, "report.html")).read()
        for pic in pics:
            path = os.path.join(out, pic)
            try:
                w, h, rows, _ = decode_png(open(path, "rb").read()) if os.path.exists(path) else (0, 0, [], None)
                ok = w > 0 and sum(1 for r in rows for x in range(0, len(r), 3) if r[x:x + 3] != b"\xff\xff\xff") > 0
            except PngError as e:
                ok = False
            check(f"report: {pic} written, decodes, linked from report.md", ok and f"]({pic})" in md)
        check("report.html: the shifted-NIAH table (mode x shift)",
              ">shift 1000</th>" in html and "<td>bf16-hf</td>" in html)
        check("report.html: the throughput table", ">prefill tokens/s</th>" in html and ">batch run</th>" in html)
        check("report.html: the cache table with measured sizes", ">MB at 256</th>" in html and "hymba, measured" in html)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = results.count(False)
    print(f"\n{len(results) - failed}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
