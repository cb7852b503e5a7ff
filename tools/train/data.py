#!/usr/bin/env python3
"""data.py: the training data of the project's own model, made by hymeval.

1. synth_docs.py writes procedural documents (records, passages) in the
   dataset formats hymeval's loaders read;
2. training task lines (TASKS below: every NIAH variant, RULER's recall
   tasks, associative recall, SWDE/FDA-style records, SQuAD-C, RULER QA) is
   written next to them (one task file each), with seeds far from the suites' (the suites use
   seeds below 100), so no evaluation example is trained on;
3. `hymeval gen-data` builds its examples with hymeval's own generators and
   length targeting;
4. each example becomes one training sequence: BOS + prompt + answer + "\\n",
   tokenised with the `tokenizers` library (which hymeval matches byte for
   byte), with a mask marking the answer tokens.

usage: data.py --hymeval build/hymeval --tokenizer DIR --work DIR --out FILE.npz
               [--scale K] [--lengths 256,512,1024] [--seed S] [--only NAMES] [--far TOKENS] [--text-only FILE]
--only keeps the named tasks (variants such as single_1,kv, or the groups
niah, recall, docs; default all). --text-only writes the plain texts (one JSON
string per line) instead, for training the tokenizer.
"""
import argparse
import concurrent.futures
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (task line without name/lengths/seed, examples per length per unit of --scale)
TASKS = [
    ({"kind": "niah", "variant": "single_1", "depth_mode": "random", "max_new_tokens": 16}, 6),
    ({"kind": "niah", "variant": "single_2", "depth_mode": "random", "max_new_tokens": 16}, 8),
    ({"kind": "niah", "variant": "single_3", "depth_mode": "random", "max_new_tokens": 32}, 4),
    ({"kind": "niah", "variant": "multikey_1", "depth_mode": "random", "max_new_tokens": 16}, 6),
    ({"kind": "niah", "variant": "multikey_2", "depth_mode": "random", "max_new_tokens": 16}, 4),
    ({"kind": "niah", "variant": "multikey_3", "depth_mode": "random", "max_new_tokens": 32}, 3),
    ({"kind": "niah", "variant": "multivalue", "depth_mode": "random", "max_new_tokens": 48}, 4),
    ({"kind": "niah", "variant": "multiquery", "depth_mode": "random", "max_new_tokens": 48}, 4),
    ({"kind": "recall", "variant": "kv", "max_new_tokens": 32}, 4),
    ({"kind": "recall", "variant": "ar", "max_new_tokens": 16}, 5),
    ({"kind": "recall", "variant": "vt", "max_new_tokens": 30}, 4),
    ({"kind": "recall", "variant": "fwe", "max_new_tokens": 24}, 2),
    ({"kind": "recall", "variant": "qa_squad", "data": "docs/squad_v2.json", "max_new_tokens": 16}, 5),
]
# the shortest target length each variant's prompt fits in (its fixed text and
# distractors); shorter lengths are left out for it
MIN_LENGTH = {"multikey_1": 512, "multikey_3": 512, "multiquery": 512, "multivalue": 512, "vt": 1024, "fwe": 1024, "qa_squad": 512}
# tasks without lengths: examples come from the documents themselves
DOC_TASKS = [
    {"kind": "recall", "variant": "swde", "data": "docs/swde.jsonl"},
    {"kind": "recall", "variant": "fda", "data": "docs/fda.jsonl"},
    {"kind": "squad_c", "data": "docs/squad_c.jsonl", "version": 0, "num_fewshot": 1},
]


CHUNK = 10  # samples per gen-data call: one unfit example costs its chunk, not the task


def selected(task, group, only):
    """Whether --only keeps a task: by variant, or by group (niah: every NIAH
    variant; recall: the recall tasks with lengths; docs: DOC_TASKS)."""
    return not only or task.get("variant", task["kind"]) in only or group in only


def far_depths(length, far):
    """Grid depths (percent, steps of 5) that leave at least `far` tokens (plus
    the question's ~32) between the needle and the end of the prompt."""
    top = int(100 * (1 - (far + 32) / length)) // 5 * 5
    return list(range(0, top + 1, 5)) if top >= 0 else []


def far_lines(i, task, per, usable, scale, seed, far):
    """NIAH lines with every asked needle's first depth beyond the last `far`
    tokens (a sliding window's reach): one line per chunk, one example per
    (length, depth) of its grid, seeds of their own."""
    for n in usable:
        depths = far_depths(n, far)
        if not depths:
            continue
        todo, c = max(1, per * scale), 0
        while todo > 0:
            t = {k: v for k, v in task.items() if k != "depth_mode"}
            t.update(name="t%02d_%s_far%d_c%03d" % (i, task["variant"], n, c), lengths=[n], depth_mode="grid",
                     depths=depths, samples_per_cell=1, seed=seed + 1000 * i + 97 * c + n)
            todo -= len(depths)
            c += 1
            yield t


def task_lines(lengths, scale, seed, only=None, far=0):
    """Task lines for gen-data, each task cut into chunks of CHUNK samples with
    seeds of their own (an index i keeps its seeds whatever --only leaves out).
    far > 0: NIAH needles only at depths at least `far` tokens from the end."""
    for i, (task, per) in enumerate(TASKS):
        if not selected(task, task["kind"], only):
            continue
        usable = [n for n in lengths if n >= MIN_LENGTH.get(task["variant"], 0)]
        if not usable:
            continue
        if far and task["kind"] == "niah":
            yield from far_lines(i, task, per, usable, scale, seed, far)
            continue
        count = "samples" if task["kind"] == "niah" else "num_samples"
        todo, c = max(1, per * scale), 0
        while todo > 0:
            t = dict(task, name="t%02d_%s_c%03d" % (i, task["variant"], c), lengths=usable,
                     seed=seed + 1000 * i + 97 * c)
            t[count] = min(CHUNK, todo)
            todo -= t[count]
            c += 1
            yield t
    for i, task in enumerate(DOC_TASKS):
        if not selected(task, "docs", only):
            continue
        yield dict(task, name="d%02d_%s" % (i, task.get("variant", task["kind"])), seed=seed + 50000 + i)


def generate(args, work, task):
    """Runs gen-data on one task chunk. The suites' length check is strict (a
    realised length more than 1% off is an error, not a sample); a seed that
    draws such an example is replaced by the next one, and a chunk that no
    seed fits is left out (and counted)."""
    for attempt in range(8):
        t = dict(task, seed=task["seed"] + 7919 * attempt)
        path = os.path.join(work, "task_%s.jsonl" % t["name"])
        with open(path, "w") as f:
            f.write(json.dumps(t) + "\n")
        out = os.path.join(work, "examples_%s.jsonl" % t["name"])
        r = subprocess.run([args.hymeval, "gen-data", "--tasks", path, "--tokenizer", args.tokenizer, "--out", out],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return [json.loads(line) for line in open(out, encoding="utf-8")]
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "exit %d" % r.returncode
        if r.returncode != 1 or "target" not in last:
            sys.exit("%s: gen-data failed: %s" % (t["name"], last))  # not a length miss: a real error
    print("  %s: no seed fits the length targets; chunk left out (%s)" % (task["name"], last), file=sys.stderr)
    return []


def answer_text(ex):
    """What a correct model writes after the prompt (the scorers' targets)."""
    sep = "" if ex["prompt"].endswith((" ", "\n")) else " "
    targets = ex["targets"]
    if ex["kind"] == "niah":
        body = ", ".join(targets) + "."
    elif len(targets) > 1:
        body = " ".join(targets)
    else:
        body = targets[0].lstrip(" ")  # SWDE's values carry their own leading space
    return sep + body + "\n"


def build(args):
    os.makedirs(args.work, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "synth_docs.py"), "--out", os.path.join(args.work, "docs"),
                    "--seed", str(args.seed), "--records", str(200 * args.scale),
                    "--passages", str(300 * args.scale)], check=True)
    lengths = [int(x) for x in args.lengths.split(",")]
    only = set(args.only.split(",")) if args.only else None
    tasks = list(task_lines(lengths, args.scale, args.seed, only, args.far))
    if not tasks:
        sys.exit("--only %s keeps no task" % args.only)
    # one gen-data process per task, as many at once as there are cores; the
    # rows are joined in task order, so the result does not depend on timing
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda t: generate(args, args.work, t), tasks))
    rows, per_task = [], {}
    for task, got in zip(tasks, results):
        key = task["name"].rsplit("_c", 1)[0].split("_far")[0] if task["name"].startswith("t") else task["name"]
        per_task[key] = per_task.get(key, 0) + len(got)
        rows += got
    for key, n in per_task.items():
        print("  %-16s %6d examples" % (key, n), file=sys.stderr)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hymeval", default="build/hymeval")
    ap.add_argument("--tokenizer", required=True, help="directory with tokenizer.json (length targeting + encoding)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out")
    ap.add_argument("--text-only")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--lengths", default="256,512,1024")
    ap.add_argument("--seed", type=int, default=100003)
    ap.add_argument("--far", type=int, default=0, metavar="TOKENS",
                    help="NIAH needles only where at least TOKENS tokens separate them from the question "
                         "(e.g. the sliding window, 256: retrieval the window layers cannot do)")
    ap.add_argument("--only", help="comma-separated variants (single_1, kv, ...) or groups (niah, recall, docs) "
                                   "to keep; default all")
    args = ap.parse_args()
    rows = build(args)
    rng = random.Random(args.seed)
    rng.shuffle(rows)
    texts = [(r["prompt"], answer_text(r)) for r in rows if "prompt" in r]
    if args.text_only:
        with open(args.text_only, "w", encoding="utf-8") as f:
            for p, a in texts:
                f.write(json.dumps(p + a) + "\n")
        print("wrote %d texts to %s" % (len(texts), args.text_only))
        return
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    seqs, masks = [], []
    fulls = tok.encode_batch([p + a for p, a in texts])  # BOS from the post-processor
    prompts = tok.encode_batch([p for p, _ in texts])
    for f_enc, p_enc in zip(fulls, prompts):
        full, prompt = f_enc.ids, p_enc.ids
        k = 0
        while k < len(prompt) and k < len(full) and prompt[k] == full[k]:
            k += 1
        seqs.append(full)
        masks.append(k)  # tokens from index k on are the answer
    total = sum(len(s) for s in seqs)
    # numpy, not torch: the data is made wherever hymeval builds, torch or not
    offsets = np.cumsum([0] + [len(s) for s in seqs]).astype(np.int64)
    flat = np.fromiter((t for s in seqs for t in s), dtype=np.int32, count=total)
    np.savez_compressed(args.out, tokens=flat.astype(np.uint16 if flat.max() < 65536 else np.int32),
                        offsets=offsets, answer_start=np.array(masks, dtype=np.int64),
                        lengths=np.array(args.lengths), seed=np.array(args.seed))
    print("wrote %d sequences, %d tokens (%.1f%% answer) to %s" %
          (len(seqs), total, 100.0 * sum(len(s) - k for s, k in zip(seqs, masks)) / total, args.out))


if __name__ == "__main__":
    main()
