#!/usr/bin/env python3
"""The hymeval command line on real files: help and usage errors, sharded
checkpoints, and malformed inputs (truncated and corrupted safetensors, wrong
shapes, missing tensors, bad config.json, bad tokenizer.json), each of which
must end in a clear error naming the file / tensor / key — never a crash.
Pure Python (no NumPy), so it runs everywhere the binary does."""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")
ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")
CONFIGS = os.path.join(ROOT, "models", "configs")

results = []


def run(*args, stdin=None):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, ok, detail=""):
    results.append((name, ok, detail))
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))


def expect_error(name, args, *needles):
    """The command must exit 1 (not crash: no signal) with every needle in stderr."""
    code, out, err = run(*args)
    missing = [n for n in needles if n not in err]
    ok = code == 1 and not missing
    check(name, ok, f"exit {code}, missing {missing!r} in stderr: {err.strip()[:300]}")
    return err


def init_model(config, out, seed=3, *extra):
    code, _, err = run("init-model", "--config", os.path.join(CONFIGS, config), "--out", out, "--seed", str(seed), *extra)
    if code != 0:
        raise SystemExit(f"init-model {config} failed: {err}")


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:]


def write_safetensors(path, header, data):
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def without_tensor(src, dst, name):
    """Rewrites a safetensors file without one tensor (offsets repacked)."""
    header, data = read_safetensors(src)
    meta = header.pop("__metadata__", None)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    out, new_header, off = bytearray(), {}, 0
    for key, info in items:
        if key == name:
            continue
        b, e = info["data_offsets"]
        out += data[b:e]
        new_header[key] = dict(info, data_offsets=[off, off + e - b])
        off += e - b
    if meta is not None:
        new_header["__metadata__"] = meta
    write_safetensors(dst, new_header, bytes(out))


def main():
    if not os.path.exists(BIN):
        print(f"hymeval binary not found at {BIN}")
        return 1
    tmp = tempfile.mkdtemp(prefix="hymeval-cli-")
    try:
        # ---- help and usage
        code, out, _ = run("--help")
        check("hymeval --help", code == 0 and "init-model" in out and "generate" in out)
        for cmd in ("init-model", "inspect", "tokenize", "generate", "logits", "devices"):
            code, out, _ = run(cmd, "--help")
            check(f"{cmd} --help", code == 0 and "usage" in out.lower(), f"exit {code}")
        code, _, err = run("no-such-command")
        check("unknown command exits 2", code == 2 and "unknown command" in err)
        code, _, err = run("init-model", "--out", os.path.join(tmp, "x"))
        check("init-model without --config exits 2", code == 2 and "--config" in err)

        # ---- a good checkpoint, single file and sharded
        good = os.path.join(tmp, "good")
        init_model("tiny-hymba.json", good)
        code, out, err = run("inspect", good)
        check("inspect good checkpoint", code == 0 and "parameters" in out and "cache per sequence" in out, err)
        # the parameter count equals the elements the checkpoint holds, for every kq_norm
        # (consumer layers of a KV group have q_norm but no k_norm)
        for kq in ("none", "rms", "perhead-rms"):
            cfg = json.load(open(os.path.join(CONFIGS, "tiny-hymba.json")))
            cfg["kq_norm"] = kq
            cfg_path, d = os.path.join(tmp, f"kq-{kq}.json"), os.path.join(tmp, f"kq-{kq}")
            json.dump(cfg, open(cfg_path, "w"))
            run("init-model", "--config", cfg_path, "--out", d, "--seed", "1")
            header, _ = read_safetensors(os.path.join(d, "model.safetensors"))
            held = sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
            code, out, err = run("inspect", d)
            line = [x for x in out.splitlines() if x.startswith("parameters:")]
            counted = int(line[0].split()[1]) if line else -1
            check(f"inspect parameter count == tensor elements (kq_norm {kq})", counted == held, f"{counted} vs {held}")
        sharded = os.path.join(tmp, "sharded")
        init_model("tiny-hymba.json", sharded, 3, "--shard-mb", "1")
        shards = sorted(f for f in os.listdir(sharded) if f.endswith(".safetensors"))
        check("init-model --shard-mb 1 writes shards + index",
              len(shards) >= 2 and os.path.exists(os.path.join(sharded, "model.safetensors.index.json")), str(shards))
        ids = "5,9,200,31,77,12,600,3,44,45,46,47,48,49,50,51,52,53,54,55"
        a, b = os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")
        ca, _, ea = run("logits", good, "--ids", ids, "--out", a)
        cb, _, eb = run("logits", sharded, "--ids", ids, "--out", b)
        same = ca == 0 and cb == 0 and open(a, "rb").read() == open(b, "rb").read()
        check("sharded checkpoint gives the same logits as the single file", same, ea + eb)
        code, out, err = run("generate", good, "--prompt", "The key is", "--max-tokens", "8", "--json", "--no-eos-stop")
        try:
            gen = json.loads(out)
            ok = code == 0 and gen["generated_tokens"] == 8 and len(gen["ids"]) == 8
        except (ValueError, KeyError):
            ok = False
        check("generate --json", ok, err + out[:200])
        code, out, err = run("tokenize", os.path.join(ROOT, "models", "tokenizer"), "hello world")
        check("tokenize with a directory holding only tokenizer.json",
              code == 0 and json.loads(out)[0] == 1, err + out)

        # ---- malformed safetensors
        st = os.path.join(good, "model.safetensors")
        raw = open(st, "rb").read()

        def variant(name, mutate_bytes=None, files=None):
            d = os.path.join(tmp, name)
            shutil.copytree(good, d)
            if mutate_bytes is not None:
                open(os.path.join(d, "model.safetensors"), "wb").write(mutate_bytes)
            for fname, text in (files or {}).items():
                open(os.path.join(d, fname), "w").write(text)
            return d

        for cut in (4, 8 + 50, len(raw) // 2, len(raw) - 1):
            d = variant(f"trunc{cut}", raw[:cut])
            expect_error(f"truncated safetensors at {cut} bytes", ["inspect", d], "model.safetensors")
        huge = struct.pack("<Q", 1 << 40) + raw[8:]
        expect_error("header length field huge", ["inspect", variant("huge", huge)], "model.safetensors")
        (n,) = struct.unpack("<Q", raw[:8])
        garbled = raw[:8] + raw[8:8 + n].replace(b'"dtype"', b'"dtyp#"', 1) + raw[8 + n:]
        expect_error("corrupted header JSON key", ["inspect", variant("garbled", garbled)], "model.safetensors")
        header, data = read_safetensors(st)
        victim = "model.layers.1.mamba.out_proj.weight"
        header[victim]["data_offsets"][1] -= 4
        d = variant("badspan")
        write_safetensors(os.path.join(d, "model.safetensors"), header, data)
        expect_error("shape x dtype != byte span", ["inspect", d], "model.safetensors", victim)

        d = variant("missing")
        without_tensor(st, os.path.join(d, "model.safetensors"), "model.layers.2.mamba.D.0")
        expect_error("missing tensor", ["inspect", d], "model.layers.2.mamba.D.0", "missing")

        # wrong shapes: a config whose MLP is narrower than the weights
        cfg = json.load(open(os.path.join(good, "config.json")))
        cfg["intermediate_size"] = 96
        d = variant("shape", files={"config.json": json.dumps(cfg)})
        expect_error("wrong tensor shape", ["inspect", d], "moe.experts.0.up_proj.weight", "expected [96, 64]")

        # a non-finite weight
        header, data = read_safetensors(st)
        b0 = header["model.final_layernorm.weight"]["data_offsets"][0]
        dtype = header["model.final_layernorm.weight"]["dtype"]
        nan = struct.pack("<f", float("nan")) if dtype == "F32" else b"\xc0\x7f"
        d = variant("nan", raw[:8 + n] + data[:b0] + nan + data[b0 + len(nan):])
        expect_error("NaN weight", ["inspect", d], "model.final_layernorm.weight", "not finite")

        # sharded index naming a missing shard
        d = os.path.join(tmp, "badindex")
        shutil.copytree(sharded, d)
        os.remove(os.path.join(d, shards[-1]))
        expect_error("index names a missing shard", ["inspect", d], shards[-1])

        # ---- bad config.json
        cfg = json.load(open(os.path.join(good, "config.json")))
        del cfg["hidden_size"]
        expect_error("config missing hidden_size", ["inspect", variant("nohidden", files={"config.json": json.dumps(cfg)})],
                     "config.json", "hidden_size")
        cfg = json.load(open(os.path.join(good, "config.json")))
        cfg["num_key_value_heads"] = 3
        expect_error("config heads not divisible", ["inspect", variant("kvheads", files={"config.json": json.dumps(cfg)})],
                     "num_key_value_heads")
        expect_error("config not JSON", ["inspect", variant("notjson", files={"config.json": "{\"hidden_size\": 64,"})],
                     "config.json", "not valid JSON")
        expect_error("no config.json at all", ["inspect", os.path.join(tmp, "nowhere")], "config.json")

        # ---- bad tokenizer.json
        tok = open(os.path.join(good, "tokenizer.json")).read()
        expect_error("tokenizer.json truncated", ["inspect", variant("tok1", files={"tokenizer.json": tok[: len(tok) // 3]})],
                     "tokenizer.json")
        t = json.loads(tok)
        t["model"]["type"] = "WordPiece"
        expect_error("tokenizer.json unsupported model type",
                     ["inspect", variant("tok2", files={"tokenizer.json": json.dumps(t)})], "tokenizer.json")
        t = json.loads(tok)
        t["model"]["vocab"] = {k: v for k, v in list(t["model"]["vocab"].items())[:500]}
        t["added_tokens"] = []
        expect_error("tokenizer.json merges name unknown pieces",
                     ["inspect", variant("tok3", files={"tokenizer.json": json.dumps(t)})], "tokenizer.json")

        # ---- every shipped suite is a valid task file whose examples all build
        suites = os.path.join(ROOT, "tasks", "suites")
        for name in sorted(os.listdir(suites)):
            if not name.endswith(".jsonl"):
                continue
            code, out, err = run("run", "--model", os.path.join(ROOT, "models", "default"), "--tasks",
                                 os.path.join(suites, name), "--dry-run")
            check(f"suite {name} validates and builds", code == 0 and "the file is valid" in out, err[-400:])

        # ---- bad ids
        expect_error("logits with an out-of-vocabulary id", ["logits", good, "--ids", "5,99999", "--out", a],
                     "outside the vocabulary")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = [r for r in results if not r[1]]
    print(f"\n{len(results) - len(failed)}/{len(results)} CLI checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
