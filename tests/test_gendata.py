#!/usr/bin/env python3
"""`hymeval gen-data`: the examples of a task file written as training text.

Checks: every example of the quick suite comes out once, with the fields the
training tools read; the output is the same bytes twice (seeded); prompts
equal what the runner builds (the same generators: the NIAH prompt of a
gen-data line has the token length the runner records); --repeat gives new
examples (other seeds) with "#k" ids; a measurement task and a bad task file
are refused with messages naming the file and line.
"""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")
ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")
QUICK = os.path.join(ROOT, "tasks", "suites", "quick.jsonl")
TOKENIZER = os.path.join(ROOT, "models", "tokenizer")

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))


def gen(*args):
    p = subprocess.run([BIN, "gen-data", *args], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def main():
    with tempfile.TemporaryDirectory() as tmp:
        out1, out2 = os.path.join(tmp, "a.jsonl"), os.path.join(tmp, "b.jsonl")
        code, _, err = gen("--tasks", QUICK, "--tokenizer", TOKENIZER, "--out", out1)
        check("quick suite: gen-data exits 0", code == 0, err)
        rows = [json.loads(line) for line in open(out1, encoding="utf-8")]
        dry = subprocess.run([BIN, "run", "--tasks", QUICK, "--dry-run", "--model", os.path.join(ROOT, "models", "default")],
                             capture_output=True, text=True)
        total = [line for line in dry.stdout.splitlines() if "examples in" in line]
        expected = int(total[-1].split()[0]) if total else -1
        check("one line per example the runner would run", len(rows) == expected, f"{len(rows)} vs {expected}")
        ids = [(r["task"], r["id"]) for r in rows]
        check("ids unique and suffixed #0", len(set(ids)) == len(ids) and all(i.endswith("#0") for _, i in ids))
        gen_rows = [r for r in rows if "prompt" in r]
        ll_rows = [r for r in rows if "contexts" in r]
        check("generation rows have prompt, targets, stop",
              gen_rows and all(isinstance(r["prompt"], str) and r["targets"] and isinstance(r["stop"], list)
                               for r in gen_rows))
        check("choice rows have contexts, continuations, gold",
              ll_rows and all(len(r["contexts"]) == len(r["continuations"]) and 0 <= r["gold"] < len(r["contexts"])
                              for r in ll_rows))
        niah = [r for r in gen_rows if r["kind"] == "niah"]
        check("niah rows carry realised and target lengths",
              niah and all(r["prompt_tokens"] > 0 and r["target_tokens"] >= r["prompt_tokens"] for r in niah))
        # the needle's value is in the prompt and is the target: the data is answerable
        check("niah targets appear in their prompts", all(all(t in r["prompt"] for t in r["targets"]) for r in niah))
        tok = subprocess.run([BIN, "tokenize", TOKENIZER, niah[0]["prompt"]], capture_output=True, text=True)
        n_tok = len(json.loads(tok.stdout)) if tok.returncode == 0 else -1
        check("a niah prompt has the token count recorded", n_tok == niah[0]["prompt_tokens"],
              f"{n_tok} vs {niah[0]['prompt_tokens']}")

        code, _, err = gen("--tasks", QUICK, "--tokenizer", TOKENIZER, "--out", out2)
        check("same command, same bytes", code == 0 and open(out1, "rb").read() == open(out2, "rb").read())

        out3 = os.path.join(tmp, "c.jsonl")
        code, _, err = gen("--tasks", QUICK, "--tokenizer", TOKENIZER, "--out", out3, "--repeat", "2",
                           "--seed-offset", "100000")
        rep = [json.loads(line) for line in open(out3, encoding="utf-8")] if code == 0 else []
        check("--repeat 2 doubles the examples", len(rep) == 2 * len(rows), f"{len(rep)}")
        k1 = [r for r in rep if r["id"].endswith("#1") and r["kind"] == "niah"]
        base_prompts = {r["prompt"] for r in niah}
        check("other seeds give other niah prompts", k1 and all(r["prompt"] not in base_prompts for r in k1))

        measure = os.path.join(tmp, "m.jsonl")
        with open(measure, "w") as f:
            f.write('{"name": "c", "kind": "cache", "lengths": [64]}\n')
        code, _, err = gen("--tasks", measure, "--tokenizer", TOKENIZER, "--out", os.path.join(tmp, "m.out"))
        check("a measurement task is refused, naming file:line", code == 1 and f"{measure}:1" in err, err)
        bad = os.path.join(tmp, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"name": "x", "kind": "niah", "lengths": "many"}\n')
        code, _, err = gen("--tasks", bad, "--tokenizer", TOKENIZER, "--out", os.path.join(tmp, "bad.out"))
        check("a bad task file is refused, naming file:line", code == 1 and f"{bad}:1" in err, err)
        code, _, err = gen("--tasks", QUICK, "--out", os.path.join(tmp, "x"))
        check("missing --tokenizer is a usage error (2)", code == 2, err)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
