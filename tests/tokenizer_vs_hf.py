#!/usr/bin/env python3
"""tokenizer_vs_hf.py: `hymeval tokenize` against the Hugging Face `tokenizers`
library, which is the definition of right.

For every tokenizer below and every text of a generated corpus (several
hundred: prose, many scripts, emoji sequences, whitespace runs, digits,
control characters, special-token strings, byte-fallback text, random
Unicode and random vocabulary soups) it compares
  - the ids, with and without BOS (add_special_tokens True / False),
  - the decoded text of those ids, skip_special_tokens True and False,
  - the decoded text of random id sequences (byte tokens included),
plus the plain CLI forms (TEXT argument, --file, stdin, --pieces, --decode).

Tokenizers: the project's own (models/tokenizer), variants of it written to a
temp dir (Metaspace pre-tokenizers and decoders, added tokens with lstrip /
rstrip / single_word / normalized, no byte fallback, no decoder), and the
Llama-2 and Mistral fixtures in $HYMEVAL_SHARED/fixtures when present.

Environment: HYMEVAL_BIN (the hymeval binary), HYMEVAL_SHARED,
HYMEVAL_SOURCE_ROOT. Exit 0 all equal, 1 a mismatch, 77 skipped (no
`tokenizers` module or no binary).
"""
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unicodedata

SKIP = 77
SPACE = "\u2581"
MAX_SHOWN = 20


def env_paths():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.environ.get("HYMEVAL_SOURCE_ROOT") or os.path.dirname(here)
    shared = os.environ.get("HYMEVAL_SHARED") or os.path.join(root, "..", "shared")
    binary = os.environ.get("HYMEVAL_BIN")
    if not binary:  # run by hand: try the usual build directories
        built = [os.path.join(root, "build", "hymeval"), os.path.join(root, "build", "cli", "hymeval")]
        binary = next((b for b in built if os.access(b, os.X_OK)), built[0])
    return root, shared, binary


# ----------------------------------------------------------------------------
# The corpus

WORDS = """the of and to in is was that for on with as by at from his her they
this have had not are but which one all were when we there can an your been
has more if will would who so no out up said what its about than into them
only could new some time these two may first then do any like other how now
people my made over did down way find use water long little very after words
called just where most know get through back much before go good new write
our used me man too any day same right look think also around another came
come work three word must because does part even place well such here take
why things help put years different away again off went old number""".split()

PROSE = [
    "Hello world",
    "Hello, world!",
    "I believe the meaning of life is",
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Simply put, the theory of relativity states that ",
    "A list:\n- one\n- two\n- three\n",
    "def main():\n    print(\"hi\")\n    return 0\n",
    "name: Alice\nage: 42\ncity: Paris\n",
    "Q: What is 2+2?\nA: 4",
    "Don't stop; won't stop. It's John's book, isn't it?",
    "e-mail: someone@example.com, web: https://example.org/a?b=c&d=e#f",
    "C:\\Program Files\\hymeval\\bin",
    "[INST] Summarise this text. [/INST]",
    "<|im_start|>user\nHello<|im_end|>",
]

ACCENTED = [
    "naïve café résumé", "Ångström", "Ça va? Señor Muñoz", "Zürich Straße", "Zażółć gęślą jaźń",
    "Tiếng Việt có dấu", "İstanbul ığdır ŞĞÜ", "e\u0301te\u0301 (decomposed)", "Ærøskøbing", "façade coöperate",
    "Crème brûlée à la carte", "ÀÁÂÃÄÅ àáâãäå", "Dvořák Kafka Čapek", "Łódź", "ﬁ ligature ﬂ",
]

SCRIPTS = [
    "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία", "Γειά σου Κόσμε",
    "日本語のテキストです。", "中文测试，包括标点。", "한국어 텍스트 입니다", "漢字 and English mixed",
    "ភាសាខ្មែរ", "ព្រះរាជាណាចក្រកម្ពុជា", "ภาษาไทย", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
    "\u200fRTL mark\u200e and LRM", "ქართული ენა", "Հայերեն", "ᚠᛇᚻ᛫ᛒᛦᚦ", "ꦧꦱꦗꦮ", "𐌰𐌱𐌲", "ⴰⵣⵓⵍ",
]

EMOJI = [
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇯🇵", "❤️", "1️⃣", "I ❤️ 🍕!!", "👋🏻👋🏼👋🏽👋🏾👋🏿",
    "🧑🏽‍💻 coding", "👩‍❤️‍💋‍👨", "😀😀😀", "a😀b", " 😀 ", "🙂\n🙃", "☺︎ ☺️",
]

WHITESPACE = [
    " ", "  ", "   ", "    a", "a    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", " \n \t ", "a\r\nb", "\r",
    "   leading", "trailing   ", " both ", "\u00a0nbsp\u00a0", "\u3000ideographic\u3000", "line1\nline2\n\nline4",
    "a b  c   d    e", "\t\tindented\n\t\t\tmore", " \u2003em space", "x\u2028y\u2029z", "tab\tsep\tvalues",
]

DIGITS = [
    "0", "7", "42", "1234567890", "3.14159", "1,000,000", "000123", "2024-11-24", "+1 (555) 123-4567",
    "0xDEADBEEF", "1e-10", "12:30:45", "50%", "$19.99", "٣٤٥", "１２３", "Ⅻ", "½ ¾",
    "9" * 50, "1234567890" * 20, "3.1415926535897932384626433832795028841971",
]

PUNCT = [
    "!!!", "?!?!", "...", "—–-", "(a) [b] {c}", "\"quoted\"", "'single'", "«guillemets»", "a/b\\c",
    "#$%&*@^_`|~", "<>", "<<>>", "< s >", "¿Qué?", "¡Hola!", "。、「」", "…", "•·°", "™©®", "§¶†‡",
]

BYTE_FALLBACK = [
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\U0001F9EC", "ꙮ", "𓀀𓀁", "\ue000 private", "\U0010FFFD", "\u2581", "\u2581\u2581",
    "a\u2581b", " \u2581 ", "\u2581Hello", "𝟘𝟙𝟚", "\u0378?", "\U0001D11E music", "\u1e9e",
]

SPECIALS = [
    "<s>", "</s>", "<unk>", "<s><s>", "a<s>b", "a <s> b", "<s>Hello", "Hello</s>", "<unk>x<unk>", "<s> </s>",
    "</s></s></s>", "x<s", "<s", "s>", "</s >", "<S>", "<<s>>", "<s>\n", " <s>", "<s> ", "<0x41>",
    "\u2581<s>\u2581", "Hello <s> world", "word<s>word</s>word", "<s>  two spaces", "<unk><unk>", "<s>\t</s>",
    "text <unk> more", "<s>😀</s>", "</s>end", "start<s>", "<s>" * 10,
]

CONTROL = ["a%sb" % chr(c) for c in range(0x20)] + [
    "".join(chr(c) for c in range(0x20)), "\x00", "\x00\x00", "del\x7fchar", "nel\x85char", "\x1b[31mred\x1b[0m",
]

BOM = ["\ufeffHello", "a\ufeffb", "\ufeff", "\ufeff\ufeff x"]

# Runs of one character or pair: equal-rank merges tie, and the library
# merges the leftmost first ("aaa" -> "aa" "a", not "a" "aa").
REPEATS = [c * n for c in ["a", "e", "l", "s", "1", "0", "!", "=", "-", ".", "#", " ", "\n", "\u2581", "é", "日", "😀"]
           for n in (2, 3, 5, 8)] + [p * n for p in ["ab", "la", "ha", "12", " a", "é "] for n in (2, 3, 4)]

ADDED_TOKEN_TEXT = [  # strings of the added tokens of the "flags" variant
    "a <mask> b", "a<mask>b", "<mask>", " <mask> ", "x\t<mask>\ny", "<mask><mask>", "x [SEP] y", "x[SEP]y",
    "[SEP]", "([SEP])", "é[SEP]", "say hello world now", "hello world", "hello  world", "<|im_start|>user\nhi",
    "ring thing sing", "<mask> [SEP] <|im_start|>", "\u3000<mask>\u3000",
]


def random_unicode(rng, count):
    """Random characters from many blocks, skipping surrogates and unassigned."""
    ranges = [(0x20, 0x7E), (0xA0, 0x2FF), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0x0DFF), (0x1780, 0x17FF),
              (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xE0FF),
              (0xFE00, 0xFFFD), (0x10000, 0x1FFFF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF), (0x0, 0x1F)]
    texts = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randrange(1, 40)):
            lo, hi = rng.choice(ranges)
            c = chr(rng.randint(lo, hi))
            if unicodedata.category(c) not in ("Cs", "Cn"):
                chars.append(c)
            if rng.random() < 0.15:
                chars.append(rng.choice([" ", "  ", "\n", "\t", "<s>", "\u200d"]))
        texts.append("".join(chars))
    return texts


def generated_prose(rng, count):
    texts = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randrange(1, 60))]
        text = ""
        for w in words:
            sep = rng.choice([" "] * 12 + ["  ", ", ", ". ", "\n", " - ", "'s ", " ("])
            text += sep + (w.capitalize() if rng.random() < 0.1 else w)
        texts.append(text[rng.randrange(0, 2):])
    return texts


def common_corpus():
    rng = random.Random(1234)
    corpus = ["", " "] + PROSE + ACCENTED + SCRIPTS + EMOJI + WHITESPACE + DIGITS + PUNCT + BYTE_FALLBACK
    corpus += SPECIALS + CONTROL + BOM + ADDED_TOKEN_TEXT + REPEATS
    corpus += generated_prose(rng, 60) + random_unicode(rng, 80)
    corpus.append(" ".join(PROSE) * 20)  # a long text
    corpus.append("".join(random_unicode(rng, 40)))
    return corpus


def vocab_soup(tok, seed, count):
    """Texts glued from the tokenizer's own pieces (▁ as a space), which
    stress merges that cross piece boundaries."""
    rng = random.Random(seed)
    pieces = sorted(tok.get_vocab(with_added_tokens=True))
    texts = []
    for _ in range(count):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 25)))
        texts.append(text.replace(SPACE, " ") if rng.random() < 0.8 else text)
    return texts


def random_ids(tok, seed, count):
    rng = random.Random(seed)
    size = tok.get_vocab_size(with_added_tokens=True)
    byte_ids = [tok.token_to_id("<0x%02X>" % b) for b in range(256)]
    byte_ids = [i for i in byte_ids if i is not None]
    runs = []
    for _ in range(count):
        ids = []
        for _ in range(rng.randrange(0, 30)):
            r = rng.random()
            if r < 0.4 and byte_ids:
                ids.append(rng.choice(byte_ids))
            elif r < 0.5:
                ids.append(rng.randrange(0, 4))
            else:
                ids.append(rng.randrange(0, size))
        runs.append(ids)
    # UTF-8 byte sequences, whole and cut short, with neighbours.
    for text in ["é", "日本", "😀", "👨‍👩‍👧"]:
        raw = [tok.token_to_id("<0x%02X>" % b) for b in text.encode("utf-8")]
        if None in raw:
            continue
        a = tok.token_to_id("a") or 3
        runs += [raw, raw[:-1], raw[1:], [a] + raw[:-1] + [a], raw[:-1] + raw, raw + raw[:1]]
    return runs


# ----------------------------------------------------------------------------
# Tokenizer variants (written as tokenizer.json files into a temp dir)

def add_flag_tokens(d):
    extra = [("<mask>", dict(lstrip=True, rstrip=True, special=True, normalized=False)),
             ("[SEP]", dict(single_word=True, special=False, normalized=False)),
             ("hello world", dict(normalized=True, special=False)),
             ("<|im_start|>", dict(special=True, normalized=False)),
             ("ing", dict(special=False, normalized=False))]
    next_id = max(d["model"]["vocab"].values()) + 1
    for content, flags in extra:
        token = {"id": next_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": False}
        token.update(flags)
        d["added_tokens"].append(token)
        next_id += 1


def metaspace(scheme, split, decoder):
    def change(d):
        d["normalizer"] = None
        d["pre_tokenizer"] = {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": scheme, "split": split}
        if decoder == "metaspace":
            d["decoder"] = {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": scheme, "split": split}
    return change


def bare(d):
    d["model"]["byte_fallback"] = False
    d["model"]["fuse_unk"] = False
    d["decoder"] = None
    d["post_processor"] = None


VARIANTS = [
    ("flags", add_flag_tokens),
    ("metaspace-first", metaspace("first", False, "sequence")),
    ("metaspace-always-split", metaspace("always", True, "metaspace")),
    ("metaspace-never-split", metaspace("never", True, "metaspace")),
    ("no-byte-fallback-no-decoder", bare),
]


def write_variant(base_json, change, directory):
    d = copy.deepcopy(base_json)
    change(d)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)
    return directory


# ----------------------------------------------------------------------------
# Running hymeval

class Compare:
    def __init__(self, binary):
        self.binary = binary
        self.failures = []
        self.counts = {}

    def run(self, args, stdin=None):
        proc = subprocess.run([self.binary, "tokenize"] + args, input=stdin, capture_output=True)
        return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")

    def batch(self, name, directory, lines, flags):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            for line in lines:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
            path = f.name
        try:
            rc, out, err = self.run([directory, "--batch", path] + flags)
        finally:
            os.unlink(path)
        results = out.split(b"\n")[:-1]
        if rc != 0 or len(results) != len(lines):
            self.fail(name, "batch %s" % " ".join(flags), "exit %d, %d results for %d lines: %s"
                      % (rc, len(results), len(lines), err.strip()[:300]))
            return None
        return [json.loads(r.decode("utf-8")) for r in results]

    def fail(self, name, what, detail):
        self.failures.append("%s: %s: %s" % (name, what, detail))

    def check(self, name, what, case, expected, got):
        if expected != got:
            self.fail(name, what, "%s\n      expected %s\n      got      %s"
                      % (short(case), short(expected), short(got)))
            return False
        return True

    def compare_tokenizer(self, name, directory, hf, corpus):
        n = 0
        for add in (True, False):
            got = self.batch(name, directory, corpus, ["--bos" if add else "--no-bos"])
            for text, ids in zip(corpus, got or []):
                expected = hf.encode(text, add_special_tokens=add).ids
                if add and hf.post_processor is None:  # --bos asks for BOS even then
                    expected = [hf.token_to_id("<s>")] + expected
                self.check(name, "encode bos=%s" % add, text, expected, ids)
                n += 1
        id_runs = [hf.encode(t).ids for t in corpus] + random_ids(hf, 99, 60)
        for skip in (True, False):
            got = self.batch(name, directory, id_runs, ["--skip-special"] if skip else [])
            for ids, text in zip(id_runs, got or []):
                self.check(name, "decode skip_special=%s" % skip, ids, hf.decode(ids, skip_special_tokens=skip), text)
                n += 1
        n += self.single_shots(name, directory, hf)
        self.counts[name] = (len(corpus), len(id_runs), n)

    def single_shots(self, name, directory, hf):
        """The plain (non-batch) forms of the command."""
        n = 0
        for text in ["Hello world", "a\x00b <s> c", "  😀 naïve\n"]:
            expected = json.dumps(hf.encode(text).ids)
            if "\x00" not in text:
                rc, out, err = self.run([directory, text])
                self.check(name, "argv TEXT", text, (0, expected), (rc, compact(out)))
            with tempfile.NamedTemporaryFile("wb", delete=False) as f:
                f.write(text.encode("utf-8"))
            rc, out, err = self.run([directory, "--file", f.name])
            os.unlink(f.name)
            self.check(name, "--file", text, (0, expected), (rc, compact(out)))
            rc, out, err = self.run([directory, "--file", "-", "--no-bos"], stdin=text.encode("utf-8"))
            self.check(name, "--file - --no-bos", text, (0, json.dumps(hf.encode(text, add_special_tokens=False).ids)),
                       (rc, compact(out)))
            rc, out, err = self.run([directory, "--pieces", "--", text]) if "\x00" not in text else (0, b"", "")
            if out:
                self.check(name, "--pieces", text, hf.encode(text).tokens, json.loads(out))
            ids = hf.encode(text).ids
            for skip in (False, True):
                rc, out, err = self.run([directory, "--decode", json.dumps(ids)] + (["--skip-special"] if skip else []))
                self.check(name, "--decode skip=%s" % skip, ids,
                           (0, hf.decode(ids, skip_special_tokens=skip).encode("utf-8") + b"\n"), (rc, out))
            rc, out, err = self.run([directory, "--decode", "-"], stdin=json.dumps(ids).encode())
            self.check(name, "--decode -", ids, (0, hf.decode(ids, skip_special_tokens=False).encode() + b"\n"),
                       (rc, out))
            n += 7
        return n


def compact(out):
    try:
        return json.dumps(json.loads(out))
    except ValueError:
        return out


def short(value, limit=160):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


def invalid_utf8_checks(cmp, directory, hf):
    """Python cannot hold invalid UTF-8, so there is no reference; hymeval must
    not crash and must give each bad byte its own <0xNN> token."""
    for raw in [b"\xff\xfeA", b"a\xc3", b"\xe2\x82", b"\xed\xa0\x80x", b"\xc0\xaf", b"ok\xf8\x88\x80\x80\x80"]:
        rc, out, err = cmp.run([directory, "--file", "-", "--pieces", "--no-bos"], stdin=raw)
        if rc != 0:
            cmp.fail("invalid-utf8", "exit", "%r: %d %s" % (raw, rc, err))
            continue
        pieces = json.loads(out)
        for b in raw:
            if b >= 0x80 and "<0x%02X>" % b not in pieces and hf.token_to_id("<0x%02X>" % b) is not None:
                cmp.fail("invalid-utf8", "byte token", "%r gave %s" % (raw, pieces))
                break


def main():
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        print("SKIP: the Python `tokenizers` library is not installed (%s); pip install tokenizers" % e)
        return SKIP
    root, shared, binary = env_paths()
    if not os.access(binary, os.X_OK):
        print("SKIP: no hymeval binary at %s (set HYMEVAL_BIN)" % binary)
        return SKIP

    work = tempfile.mkdtemp(prefix="hymeval-tok-")
    try:
        return compare_all(Tokenizer, root, shared, binary, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare_all(Tokenizer, root, shared, binary, work):
    project = os.path.join(root, "models", "tokenizer")
    tokenizers = [("project", project)]
    with open(os.path.join(project, "tokenizer.json"), encoding="utf-8") as f:
        project_json = json.load(f)
    for name, change in VARIANTS:
        tokenizers.append(("project+" + name, write_variant(project_json, change, os.path.join(work, name))))
    for name in ["llama2-tokenizer", "mistral-tokenizer"]:
        directory = os.path.join(shared, "fixtures", name)
        if os.path.exists(os.path.join(directory, "tokenizer.json")):
            tokenizers.append((name, directory))
            if name == "llama2-tokenizer":
                with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
                    base = json.load(f)
                tokenizers.append(("llama2+metaspace-first",
                                   write_variant(base, metaspace("first", False, "sequence"),
                                                 os.path.join(work, "llama2-metaspace"))))
        else:
            print("note: %s not found under %s/fixtures: skipped (the project tokenizer is still tested)"
                  % (name, shared))

    cmp = Compare(binary)
    corpus = common_corpus()
    for i, (name, directory) in enumerate(tokenizers):
        hf = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
        cases = corpus + vocab_soup(hf, 7 + i, 40)
        before = len(cmp.failures)
        cmp.compare_tokenizer(name, directory, hf, cases)
        texts, id_runs, checks = cmp.counts[name]
        print("%-40s %4d texts, %4d id sequences: %5d comparisons, %d mismatches"
              % (name, texts, id_runs, checks, len(cmp.failures) - before))
    invalid_utf8_checks(cmp, project, Tokenizer.from_file(os.path.join(project, "tokenizer.json")))

    for line in cmp.failures[:MAX_SHOWN]:
        print("MISMATCH " + line)
    if len(cmp.failures) > MAX_SHOWN:
        print("... and %d more mismatches" % (len(cmp.failures) - MAX_SHOWN))
    print("%s: %d mismatches" % ("FAIL" if cmp.failures else "OK", len(cmp.failures)))
    return 1 if cmp.failures else 0


if __name__ == "__main__":
    sys.exit(main())
