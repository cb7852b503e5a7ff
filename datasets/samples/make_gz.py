#!/usr/bin/env python3
"""Writes piqa_hf.jsonl.gz, the gzip copy of piqa_hf.jsonl that the loader
tests compare with the plain file. Run from anywhere; the output is
deterministic (no file name or time stamp in the gzip header)."""
import gzip
import os

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "piqa_hf.jsonl"), "rb") as f:
    data = f.read()
with open(os.path.join(here, "piqa_hf.jsonl.gz"), "wb") as raw:
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)
