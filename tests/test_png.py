#!/usr/bin/env python3
"""`hymeval report` pictures, checked with an independent PNG decoder (Python's
zlib only): every PNG the report writes has the signature, well-formed chunks
with correct CRCs, an IHDR for 8-bit RGB, IDAT data that inflates to exactly
height x (1 + 3 x width) bytes with valid filter types, and scanlines that
unfilter (None/Sub/Up/Average/Paeth). The NIAH heatmap of a constructed
summary with known cells is checked pixel by pixel: score 1.0 cells are the
scale's green (#0CD79F), 0.0 cells its red (#F0496E), 0.5 its yellow
(#EBB839), a missing cell grey, and green lies left of red (short contexts in
the first columns). The measurement kinds' pictures (RoPE drift, shifted
NIAH, ERF, throughput, cache; from the samples' extra objects) are drawn,
with the drift curves checked by colour and position, and their tables are
in report.html. A short real run (--limit 2) is reported too.

The fixture builder (make_results) and the decoder (decode_png) are reused by
test_report_html.py."""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

BIN = os.environ.get("HYMEVAL_BIN", "build/hymeval")
ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")

GREEN, YELLOW, RED, EMPTY = (0x0C, 0xD7, 0x9F), (0xEB, 0xB8, 0x39), (0xF0, 0x49, 0x6E), (0xE6, 0xE6, 0xE6)
LENGTHS = [1000, 2000, 4000, 8000]
DEPTHS = [0, 25, 50, 75, 100]
PER_CELL = 4

results = []


def check(name, ok, detail=""):
    ok = bool(ok)
    results.append(ok)
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))
    return ok


# ---------------------------------------------------------------- PNG decoding


class PngError(Exception):
    pass


def decode_png(data, allow_rgba=False):
    """Returns (width, height, rows, info): rows are bytearrays of RGB
    triplets (RGBA quadruplets for an RGBA file, allowed with allow_rgba:
    browser screenshots); info has the chunk types, the filter types seen and
    the bytes per pixel. Raises PngError on anything a conforming 8-bit
    RGB PNG would not have."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise PngError("bad signature")
    pos, chunks = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            raise PngError(f"truncated chunk header at {pos}")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise PngError(f"chunk {ctype!r} runs past the end")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise PngError(f"chunk {ctype!r}: CRC mismatch")
        if not all(65 <= c <= 90 or 97 <= c <= 122 for c in ctype):
            raise PngError(f"chunk type {ctype!r} is not four letters")
        chunks.append((ctype, body))
        pos += 12 + length
        if ctype == b"IEND":
            break
    if pos != len(data):
        raise PngError("bytes after IEND")
    types = [c for c, _ in chunks]
    if types[0] != b"IHDR" or types[-1] != b"IEND" or b"IDAT" not in types:
        raise PngError(f"chunk order {types}")
    idat_positions = [i for i, t in enumerate(types) if t == b"IDAT"]
    if idat_positions != list(range(idat_positions[0], idat_positions[-1] + 1)):
        raise PngError("IDAT chunks are not consecutive")
    ihdr = chunks[0][1]
    if len(ihdr) != 13:
        raise PngError("IHDR is not 13 bytes")
    width, height, depth, color, compression, filt, interlace = struct.unpack(">IIBBBBB", ihdr)
    colors = (2, 6) if allow_rgba else (2,)
    if width == 0 or height == 0 or (depth, compression, filt, interlace) != (8, 0, 0, 0) or color not in colors:
        raise PngError(f"IHDR {width}x{height} depth {depth} colour {color} {compression} {filt} {interlace}")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(body for t, body in chunks if t == b"IDAT"))
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise PngError(f"IDAT inflates to {len(raw)} bytes, expected {height * (stride + 1)}")
    rows, prev, filters = [], bytearray(stride), set()
    for y in range(height):
        base = y * (stride + 1)
        ftype = raw[base]
        if ftype > 4:
            raise PngError(f"row {y}: filter type {ftype}")
        filters.add(ftype)
        line = bytearray(raw[base + 1:base + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        rows.append(line)
        prev = line
    return width, height, rows, {"chunks": types, "filters": filters, "bpp": bpp}


def pixels_of(rows, color):
    """(x, y) of every pixel exactly of color."""
    r, g, b = color
    out = []
    for y, line in enumerate(rows):
        for x in range(0, len(line), 3):
            if line[x] == r and line[x + 1] == g and line[x + 2] == b:
                out.append((x // 3, y))
    return out


def median(values):
    s = sorted(values)
    return s[len(s) // 2]


# ---------------------------------------------------------------- the fixture


def cell_value(length, depth):
    """Known cells: all green at 1000, a dip at 2000/50%, yellow at 4000, red at
    8000, and no samples at 8000/100%."""
    if length == 1000:
        return 1.0
    if length == 2000:
        return 0.25 if depth == 50 else 0.75
    if length == 4000:
        return 0.5
    return 0.0


DRIFT_DELTAS = [0, 2, 16, 100, 1000]


def add_measurement_curves(samples, metrics):
    """Samples with the extras the report draws its measurement pictures and
    tables from (docs/tasks/measurements.md), and their summary entries:
    rope_drift (fp32 flat near 0, bf16-hf well above it), niah_shift, erf,
    throughput and cache."""
    def add(task, kind, ex_id, group, scores, extra):
        samples.append({"task": task, "kind": kind, "id": ex_id, "group": group, "target_tokens": 0,
                        "prompt_tokens": 0, "scores": scores, "seconds": 1.0, "extra": extra})
        for m, v in scores.items():
            metrics.append({"task": task, "metric": m, "group": group, "value": v, "stderr": 0.0, "n": 1})

    for mode, scale in (("fp32", 1e-7), ("bf16-hf", 1.0)):
        curve = [0.0 if d == 16 else scale * (1 + math.log1p(abs(d - 16))) for d in DRIFT_DELTAS]
        extra = {"mode": mode, "length": 256, "num_sequences": 1, "delta2": 16, "deltas": DRIFT_DELTAS,
                 "attn_diff": curve}
        if mode != "fp32":
            extra["vs_fp32"] = {"bin_start": [0, 64, 128, 192], "attn_diff_per_row": [0.03, 0.01, 0.008, 0.006]}
        add("drift_curves", "rope_drift", mode, mode, {"attn_diff": curve[-1]}, extra)
    metrics.append({"task": "shift_niah", "metric": "string_match_all", "group": "", "value": 0.875,
                    "stderr": 0.1, "n": 8})
    for group, v in (("fp32@0", 1.0), ("fp32@4096", 1.0), ("bf16-hf@0", 1.0), ("bf16-hf@4096", 0.5)):
        mode, shift = group.split("@")
        for k in range(2):
            samples.append({"task": "shift_niah", "kind": "niah_shift", "id": f"{group}/L512_D50_s{k}",
                            "group": group, "target_tokens": 512, "prompt_tokens": 500,
                            "scores": {"string_match_all": float(k < 2 * v)}, "seconds": 0.3,
                            "extra": {"mode": mode, "shift": int(shift), "prediction": "42"}})
        metrics.append({"task": "shift_niah", "metric": "string_match_all", "group": group, "value": v,
                        "stderr": 0.0, "n": 2})
    for T in (256, 1024):
        layers = [{"layer": l, "attn_dist": T / 2 - 10 * l, "ssm_dist": T / 8 + 5 * l} for l in range(4)]
        d = [1, 4, 16, 64, T - 2]
        add("erf_curves", "erf", f"len{T}_seq0", str(T), {"erf_hymba": T / 3},
            {"length": T, "sequence": 0, "layers": layers,
             "perturb": {"d": d, "influence": [1.0 / (1 + x) for x in d]}})
    for L in (1024, 4096):
        for B in (1, 8):
            add("tp_table", "throughput", f"b{B}_c{L}", f"b{B}_c{L}",
                {"prefill_tokens_per_s": 1000.0 * B, "decode_tokens_per_s": 50.0 * B, "ttft_seconds": L / 1000.0},
                {"batch": B, "batch_run": B, "context": L, "decode": 32, "precision": "bf16-hf",
                 "device": "NVIDIA H200", "prefill_tokens_per_s": 1000.0 * B, "decode_tokens_per_s": 50.0 * B,
                 "ttft_seconds": L / 1000.0})
    table = [{"variant": v, "length": L, "bytes": mb * 1e6, "mb": mb}
             for v, per in (("hymba", (1.25, 3.5)), ("attn_only", (2.5, 9.5)), ("llama-3.2-3b-shape", (117.4, 469.8)))
             for L, mb in zip((1024, 4096), per)]
    for L, mb in ((1024, 1.25), (4096, 3.5)):
        extra = {"variant": "hymba", "length": L, "measured": {"bytes": mb * 1e6}}
        if L == 1024:
            extra["table"] = table
        add("cache_table", "cache", f"hymba@{L}", f"hymba@{L}", {"mb": mb}, extra)


def make_results(out_dir):
    """Writes a synthetic results directory (run.json, samples.jsonl,
    summary.json in the format reports/results.c writes) with a NIAH task
    whose cells are known, multiple-choice scores, and measurement entries
    (throughput, cache, drift) plus an unknown top-level summary key."""
    os.makedirs(out_dir, exist_ok=True)
    samples, cells, metrics = [], [], []
    for length in LENGTHS:
        for depth in DEPTHS:
            if length == 8000 and depth == 100:
                continue
            v = cell_value(length, depth)
            ones = round(v * PER_CELL)
            for k in range(PER_CELL):
                s = 1.0 if k < ones else 0.0
                samples.append({"task": "niah_grid", "kind": "niah", "id": f"L{length}_D{depth}_s{k}",
                                "group": str(length), "target_tokens": length, "prompt_tokens": length - 5,
                                "depth": depth, "needle_token_pos": int(length * depth / 100),
                                "prediction": "42" if s else "no", "targets": ["42"],
                                "scores": {"string_match_all": s}, "seconds": 0.1})
            cells.append({"task": "niah_grid", "metric": "string_match_all", "length": length, "depth": depth,
                          "value": v, "n": PER_CELL, "wilson_low": max(0.0, v - 0.3),
                          "wilson_high": min(1.0, v + 0.3)})
    samples.append({"task": "niah_grid", "kind": "niah", "id": "L8000_D100_s0", "group": "8000",
                    "target_tokens": 8000, "prompt_tokens": 7000, "depth": 100,
                    "error": "length missed its target by more than 1%", "seconds": 0.0})

    def mean_se(values):
        n = len(values)
        p = sum(values) / n
        return p, (p * (1 - p) / n) ** 0.5, n

    scored = [s for s in samples if "scores" in s]
    p, se, n = mean_se([s["scores"]["string_match_all"] for s in scored])
    metrics.append({"task": "niah_grid", "metric": "string_match_all", "group": "", "value": p, "stderr": se, "n": n})
    for length in LENGTHS:
        vals = [s["scores"]["string_match_all"] for s in scored if s["group"] == str(length)]
        p, se, n = mean_se(vals)
        metrics.append({"task": "niah_grid", "metric": "string_match_all", "group": str(length), "value": p,
                        "stderr": se, "n": n})
    for i in range(10):
        gold = i % 2
        samples.append({"task": "piqa", "kind": "multiple_choice", "id": str(i), "group": "",
                        "target_tokens": 0, "prompt_tokens": 30, "prediction": [-1.0, -2.0], "gold": gold,
                        "scores": {"acc": float(gold == 0), "acc_norm": float(i < 7), "acc_bytes": float(i < 6)},
                        "seconds": 0.01})
    for m, v in (("acc", 0.5), ("acc_norm", 0.7), ("acc_bytes", 0.6)):
        metrics.append({"task": "piqa", "metric": m, "group": "", "value": v, "stderr": (v * (1 - v) / 10) ** 0.5,
                        "n": 10})
    # measurement kinds, as later tasks will report them
    for task, kind, metric, groups in (("prefill_speed", "throughput", "prefill_tokens_per_s",
                                        {"1024": 5200.0, "4096": 4800.0, "16384": 3900.0}),
                                       ("cache_size", "cache", "mb", {"1024": 12.5, "4096": 20.1, "16384": 51.0}),
                                       ("drift", "rope_drift", "attn_diff", {"2": 0.01, "16": 0.05, "1000": 0.4})):
        samples.append({"task": task, "kind": kind, "id": "0", "group": "", "target_tokens": 0,
                        "prompt_tokens": 0, "scores": {metric: list(groups.values())[0]}, "seconds": 1.0})
        metrics.append({"task": task, "metric": metric, "group": "", "value": sum(groups.values()) / len(groups),
                        "stderr": 0.0, "n": len(groups)})
        for g, v in groups.items():
            metrics.append({"task": task, "metric": metric, "group": g, "value": v, "stderr": 0.0, "n": 1})
    add_measurement_curves(samples, metrics)
    summary = {"metrics": metrics, "cells": cells, "errors": {"niah_grid": 1},
               "effective_length": {"niah_grid": {"threshold": 0.9, "length": 4000}}}
    run = {"tasks_sha256": "0" * 64, "model_sha256": "1" * 64, "precision": "fp32", "limit": 0, "only": "",
           "command": ["hymeval", "run", "--tasks", "synthetic.jsonl"], "tasks_file": "synthetic.jsonl",
           "model": "models/default", "backend": "cpu", "device": "cpu (test)", "engine_version": "0.1.0",
           "engine_git_revision": "test", "started": "2026-01-02T03:04:05Z", "ended": "2026-01-02T03:05:00Z",
           "complete": True}
    with open(os.path.join(out_dir, "samples.jsonl"), "w") as f:
        for s in samples:
            f.write(json.dumps(s) + "\n")
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(out_dir, "run.json"), "w") as f:
        json.dump(run, f, indent=1)
    return summary


def report(dir_):
    return subprocess.run([BIN, "report", dir_], capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- checks


def check_all_pngs(dir_, label):
    pngs = sorted(f for f in os.listdir(dir_) if f.endswith(".png"))
    check(f"{label}: report wrote PNG pictures", pngs, os.listdir(dir_))
    decoded, filters = {}, set()
    for name in pngs:
        data = open(os.path.join(dir_, name), "rb").read()
        try:
            w, h, rows, info = decode_png(data)
        except (PngError, zlib.error) as e:
            check(f"{label}: {name} decodes", False, str(e))
            continue
        filters |= info["filters"]
        non_white = sum(1 for line in rows for x in range(0, len(line), 3) if line[x:x + 3] != b"\xff\xff\xff")
        check(f"{label}: {name} decodes ({w}x{h}, chunks {[c.decode() for c in info['chunks']]}) and is not blank",
              non_white > 0.01 * w * h, f"{non_white} non-white pixels")
        decoded[name] = (w, h, rows)
    md = open(os.path.join(dir_, "report.md")).read()
    for name in pngs:
        check(f"{label}: report.md links {name}", f"]({name})" in md)
    return decoded, filters


BLUE, ORANGE = (0x2E, 0x6F, 0xD8), (0xE4, 0x57, 0x2E)  # the plots' first two series colours


def in_plot(pixels, w):
    """Pixels left of the legend (a plot is 960 wide, the legend adds width)."""
    return [(x, y) for x, y in pixels if x < min(w, 940)]


def check_measurement_pictures(decoded, html):
    """The measurement kinds' pictures (from the samples' extra objects) and tables."""
    want = ["drift-drift_curves-attn_diff.png", "drift-drift_curves-vs_fp32.png", "drift-shift_niah-accuracy.png",
            "erf-erf_curves-layers.png", "erf-erf_curves-influence.png", "throughput-tp_table-tokens_per_s.png",
            "cache-cache_table-mb.png"]
    for pic in want:
        check(f"measurement picture {pic} is drawn", pic in decoded, sorted(decoded))
    name = "drift-drift_curves-attn_diff.png"
    if name in decoded:
        w, h, rows = decoded[name]
        blue, orange = in_plot(pixels_of(rows, BLUE), w), in_plot(pixels_of(rows, ORANGE), w)
        check("drift curves: fp32 (first colour) and bf16-hf (second) are both drawn",
              len(blue) > 200 and len(orange) > 200, (len(blue), len(orange)))
        if blue and orange:
            # y grows downwards: bf16-hf's larger attn_diff lies above fp32's flat ~0 line
            check("drift curves: bf16-hf lies above fp32", median(y for _, y in orange) < median(y for _, y in blue))
            check("drift curves: fp32 is flat (rounding level)", max(y for _, y in blue) - min(y for _, y in blue) < 12)
    name = "erf-erf_curves-layers.png"
    if name in decoded:
        w, h, rows = decoded[name]
        colours = [(0x2E, 0x6F, 0xD8), (0xE4, 0x57, 0x2E), (0x17, 0xA5, 0x89), (0x9B, 0x59, 0xB6)]
        counts = [len(in_plot(pixels_of(rows, c), w)) for c in colours]
        check("ERF by layer: attention and SSM curves for both lengths", all(n > 100 for n in counts), counts)
    check("report.html: measurement pictures are inline SVG with their captions",
          "receptive field by layer and head type" in html and "attn_diff D(d1, d2 = 16) by d1" in html
          and "BF16 vs FP32 attention difference by position" in html)
    check("report.html: the throughput table (batch, context, tokens/s, device)",
          ">prefill tokens/s</th>" in html and "<td>NVIDIA H200</td>" in html and ">8000.0</td>" in html)
    check("report.html: the cache table, formula rows and measured sizes",
          ">MB at 4096</th>" in html and "<td>llama-3.2-3b-shape</td>" in html and "hymba, measured" in html
          and ">469.80</td>" in html)
    check("report.html: the shifted-NIAH table, accuracy (n) per mode x shift",
          ">shift 4096</th>" in html and ">0.5000 (2)</td>" in html)


def main():
    tmp = tempfile.mkdtemp(prefix="hymeval-png-")
    try:
        syn = os.path.join(tmp, "synthetic")
        make_results(syn)
        p = report(syn)
        check("hymeval report on a synthetic results dir exits 0", p.returncode == 0, p.stderr)
        if p.returncode != 0:
            return 1
        decoded, filters = check_all_pngs(syn, "synthetic")
        check("scanline filters beyond None are used (and unfiltered)", len(filters) >= 2, filters)

        name = "heatmap-niah_grid-string_match_all.png"
        if check("the NIAH heatmap PNG exists", name in decoded):
            w, h, rows = decoded[name]
            green, red, yellow, empty = (pixels_of(rows, c) for c in (GREEN, RED, YELLOW, EMPTY))
            # a cell is at least ~60 x 36 pixels less its printed value; 5 green cells
            check("score 1.0 cells are green (#0CD79F)", len(green) > 5 * 1000, len(green))
            check("score 0.0 cells are red (#F0496E)", len(red) > 4 * 1000, len(red))
            check("score 0.5 cells are yellow (#EBB839)", len(yellow) > 5 * 1000, len(yellow))
            check("the cell without samples is grey", len(empty) > 1000, len(empty))
            if green and red:
                check("green (1000 tokens) lies left of red (8000 tokens)",
                      median(x for x, _ in green) < median(x for x, _ in yellow) < median(x for x, _ in red))
            # the 2000-token column: 0.75 everywhere but a 0.25 dip at depth 50 (middle row)
            # the encoder rounds halves away from zero (C lround), not to even as round() does
            mix = lambda a, b, t: tuple(int(a[i] + (b[i] - a[i]) * t + 0.5) for i in range(3))
            c075, c025 = mix(YELLOW, GREEN, 0.5), mix(RED, YELLOW, 0.5)
            p075, p025 = pixels_of(rows, c075), pixels_of(rows, c025)
            check("0.75 and 0.25 cells get the interpolated colours", len(p075) > 4 * 1000 and len(p025) > 1000,
                  (len(p075), len(p025)))
            if p075 and p025 and green:
                ys75 = sorted(set(y for _, y in p075))
                check("the 0.25 dip is in the middle row of its column, rows ordered 0% at the top",
                      ys75[0] < median(y for _, y in p025) < ys75[-1]
                      and abs(median(x for x, _ in p025) - median(x for x, _ in p075)) < 5)
            # the colour bar: a vertical gradient from green (top) to red (bottom) right of the grid
            # the grey cell (8000 tokens, 100%) is in the last column: the grid ends at its right edge
            right = max(x for x, _ in empty)
            near = lambda px, c: sum(abs(px[i] - c[i]) for i in range(3)) <= 24
            bar_green, bar_red = [], []
            for y, line in enumerate(rows):
                for x in range(right + 1, w):
                    px = line[3 * x:3 * x + 3]
                    if near(px, GREEN):
                        bar_green.append((x, y))
                    elif near(px, RED):
                        bar_red.append((x, y))
            check("a colour bar stands right of the grid, green at its top and red at its bottom",
                  bar_green and bar_red and max(y for _, y in bar_green) < min(y for _, y in bar_red),
                  (len(bar_green), len(bar_red)))
        svg_html = open(os.path.join(syn, "report.html")).read()
        check("report.html carries the heatmap as inline SVG with the three scale colours",
              all(c in svg_html.upper() for c in ("#0CD79F", "#EBB839", "#F0496E")) and "Depth Percent" in svg_html
              and "Token Limit" in svg_html and ">Score<" in svg_html)
        plot = "length-all.png"
        if check("the accuracy-by-length plot PNG exists", plot in decoded):
            w, h, rows = decoded[plot]
            check("the first series is drawn in its palette colour", len(pixels_of(rows, (0x2E, 0x6F, 0xD8))) > 200)
        for pic in ("throughput-prefill_speed.png", "cache-cache_size.png", "drift-drift.png"):
            check(f"measurement curve {pic} is drawn", pic in decoded, sorted(decoded))
        check_measurement_pictures(decoded, svg_html)

        # a short real run
        real = os.path.join(tmp, "real")
        quick = os.path.join(ROOT, "tasks", "suites", "quick.jsonl")
        model = os.path.join(ROOT, "models", "default")
        p = subprocess.run([BIN, "run", "--model", model, "--tasks", quick, "--limit", "2", "--only",
                            "niah_single_1,piqa", "--out", real], capture_output=True, text=True, timeout=1200)
        check("a short real run (--limit 2) succeeds", p.returncode == 0, p.stderr[-2000:])
        if p.returncode == 0:
            p = report(real)
            check("hymeval report on the real run exits 0", p.returncode == 0, p.stderr)
            if p.returncode == 0:
                decoded, _ = check_all_pngs(real, "real run")
                check("the real run has its NIAH heatmap",
                      any(n.startswith("heatmap-niah_single_1") for n in decoded), sorted(decoded))
        p = report(os.path.join(tmp, "nowhere"))
        check("hymeval report on a missing directory fails with a message",
              p.returncode != 0 and "summary.json" in p.stderr + p.stdout, p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = results.count(False)
    print(f"\n{len(results) - failed}/{len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
