#!/usr/bin/env python3
"""`hymeval run` end to end on the embedded default model: the quick suite
writes run.json / samples.jsonl / summary.json; a run killed mid-way and
finished with --resume gives exactly the summary of an uninterrupted run and
never duplicates an example; a results directory is not silently reused."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")
ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")
MODEL = os.path.join(ROOT, "models", "default")
QUICK = os.path.join(ROOT, "tasks", "suites", "quick.jsonl")

results = []


def check(name, ok, detail=""):
    ok = bool(ok)
    results.append(ok)
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))


def run(args, timeout=1200):
    p = subprocess.run([BIN, "run", *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    tmp = tempfile.mkdtemp(prefix="hymeval-run-")
    try:
        full = os.path.join(tmp, "full")
        t0 = time.time()
        code, out, err = run(["--model", MODEL, "--tasks", QUICK, "--out", full])
        wall = time.time() - t0
        check("quick suite runs end to end", code == 0, err[-2000:])
        if code != 0:
            return 1
        for f in ("run.json", "samples.jsonl", "summary.json"):
            check(f"writes {f}", os.path.exists(os.path.join(full, f)))
        samples = lines(os.path.join(full, "samples.jsonl"))
        summary = json.load(open(os.path.join(full, "summary.json")))
        run_json = json.load(open(os.path.join(full, "run.json")))
        tasks = [json.loads(l) for l in open(QUICK) if l.strip() and not l.startswith("#")]
        kinds = {t["kind"] for t in tasks}
        check("every kind of the suite produced samples", kinds <= {s["kind"] for s in samples},
              f"{kinds} vs {set(s['kind'] for s in samples)}")
        ids = [(s["task"], s["id"]) for s in samples]
        check("no duplicate example lines", len(ids) == len(set(ids)))
        check("summary has value, stderr and n for every metric",
              all({"value", "stderr", "n"} <= set(m) for m in summary["metrics"]) and summary["metrics"])
        check("run.json records the run", run_json.get("complete") is True and run_json.get("model_sha256")
              and run_json.get("tasks_sha256") and run_json.get("device"), json.dumps(run_json)[:300])
        print(f"  quick suite: {len(samples)} examples in {wall:.1f} s ({len(samples) / wall:.2f} examples/s)")
        # the summary recomputed independently from samples.jsonl
        agg = {}
        for smp in samples:
            for metric, v in smp.get("scores", {}).items():
                for group in {"", smp["group"]}:
                    a = agg.setdefault((smp["task"], metric, group), [0.0, 0])
                    a[0] += v
                    a[1] += 1
        got = {(m["task"], m["metric"], m["group"]): (m["value"], m["n"]) for m in summary["metrics"]}
        bad = [k for k, (total, n) in agg.items() if k not in got or got[k][1] != n or abs(got[k][0] - total / n) > 1e-12]
        check("summary means and counts equal an independent recount of samples.jsonl",
              not bad and len(got) == len(agg), f"{bad[:3]} ({len(got)} vs {len(agg)} entries)")

        # RULER table: per length, the mean over niah/recall tasks of each task's headline metric
        head, per = {}, {}
        for smp in samples:
            if smp["kind"] not in ("niah", "recall") or not smp["group"].isdigit() or not smp.get("scores"):
                continue
            m = head.setdefault(smp["task"], next(iter(smp["scores"])))
            a = per.setdefault((smp["task"], int(smp["group"])), [0.0, 0])
            a[0] += smp["scores"][m]
            a[1] += 1
        by_len = {}
        for (task, length), (total, n) in per.items():
            by_len.setdefault(length, []).append(total / n)
        ruler = summary.get("ruler", {})
        got_len = {e["length"]: (e["mean"], e["tasks"]) for e in ruler.get("by_length", [])}
        ok = set(got_len) == set(by_len) and all(
            abs(got_len[L][0] - sum(v) / len(v)) < 1e-12 and got_len[L][1] == len(v) for L, v in by_len.items())
        eff, shortest = 0, None
        for L in sorted(by_len):
            mean = sum(by_len[L]) / len(by_len[L])
            if mean > 0.856:
                eff = L
            else:
                break
        check("summary's RULER table and effective length equal a recount",
              ok and ruler.get("effective_length") == eff, json.dumps(ruler)[:300])

        # the same directory again without --resume: refused
        code, _, err = run(["--model", MODEL, "--tasks", QUICK, "--out", full])
        check("existing results directory refused without --resume", code == 1 and "--resume" in err, err[-300:])
        # --resume on a finished run adds nothing
        code, _, err = run(["--model", MODEL, "--tasks", QUICK, "--out", full, "--resume"])
        check("--resume of a finished run adds no lines",
              code == 0 and len(lines(os.path.join(full, "samples.jsonl"))) == len(samples), err[-300:])
        # --resume with different settings: refused
        code, _, err = run(["--model", MODEL, "--tasks", QUICK, "--out", full, "--resume", "--limit", "1"])
        check("--resume with a different --limit refused", code == 1 and "limit" in err, err[-300:])
        # --resume on another backend: refused (a GPU run finished on the CPU would mix the two,
        # throughput included); a run.json that says cuda stands in for a GPU run here
        rj_path = os.path.join(full, "run.json")
        rj_text = open(rj_path).read()
        rj = json.loads(rj_text)
        rj["backend"] = "cuda"
        with open(rj_path, "w") as f:
            json.dump(rj, f)
        code, _, err = run(["--model", MODEL, "--tasks", QUICK, "--out", full, "--resume"])
        check("--resume on another backend refused", code == 1 and '"backend"' in err, err[-300:])
        with open(rj_path, "w") as f:
            f.write(rj_text)

        # kill a run mid-way, then resume it
        part = os.path.join(tmp, "killed")
        proc = subprocess.Popen([BIN, "run", "--model", MODEL, "--tasks", QUICK, "--out", part, "--batch", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sp = os.path.join(part, "samples.jsonl")
        deadline = time.time() + 600
        target = max(2, len(samples) // 2)
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(sp) and sum(1 for _ in open(sp)) >= target:
                break
            time.sleep(0.02)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        n_before = sum(1 for l in open(sp) if l.endswith("\n")) if os.path.exists(sp) else 0
        check("run killed mid-way", killed and 0 < n_before < len(samples), f"{n_before} of {len(samples)} lines")
        # simulate a kill in the middle of a write: a torn last line
        with open(sp, "a") as f:
            f.write('{"task": "torn')
        first_started = json.load(open(os.path.join(part, "run.json")))["started"]
        time.sleep(1.1)  # run.json times have 1 s resolution
        code, _, err = run(["--model", MODEL, "--tasks", QUICK, "--out", part, "--resume"])
        check("--resume finishes the killed run", code == 0, err[-1000:])
        rj = json.load(open(os.path.join(part, "run.json")))
        check("resumed run.json keeps the first start and records when it was resumed",
              rj["started"] == first_started and rj.get("resumed") is True and rj.get("resumed_at", "") > first_started,
              json.dumps({k: rj.get(k) for k in ("started", "resumed_at", "resumed")}))
        resumed = lines(sp)
        rids = [(s["task"], s["id"]) for s in resumed]
        check("resumed run has every example exactly once", sorted(rids) == sorted(ids),
              f"{len(rids)} lines, {len(set(rids))} distinct, expected {len(ids)}")
        resumed_summary = json.load(open(os.path.join(part, "summary.json")))
        check("resumed summary equals the uninterrupted summary",
              resumed_summary["metrics"] == summary["metrics"] and resumed_summary["cells"] == summary["cells"])
        # predictions are deterministic: same example, same prediction
        by_id = {(s["task"], s["id"]): s["prediction"] for s in samples}
        check("predictions identical after resume", all(by_id[(s["task"], s["id"])] == s["prediction"] for s in resumed))

        # batch invariance on the CPU: batch 1 and batch 8 give the same greedy outputs
        b1 = os.path.join(tmp, "b1")
        code, _, err = run(["--model", MODEL, "--tasks", QUICK, "--out", b1, "--batch", "1"])
        b1_pred = {(s["task"], s["id"]): s["prediction"] for s in lines(os.path.join(b1, "samples.jsonl"))}
        flips = sum(1 for k, v in by_id.items() if b1_pred.get(k) != v)
        check("batch 1 and batch 8 give identical outputs (CPU)", code == 0 and flips == 0, f"{flips} differ")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{sum(results)}/{len(results)} run checks passed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
