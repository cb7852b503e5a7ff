#!/usr/bin/env python3
"""make_tokenizer.py: builds hymeval's small default tokenizer.

Writes models/tokenizer/tokenizer.json and tokenizer_config.json in exactly the
layout of the Hugging Face Llama-2 tokenizer.json (a SentencePiece-style BPE
with byte fallback), only smaller: 1024 entries.

    id 0..2      <unk> <s> </s>        (added special tokens)
    id 3..258    <0x00> .. <0xFF>      (byte fallback)
    id 259..1023 learned pieces        (characters, then merge results)

The training text is generated here from a fixed seed (own word lists, no
outside data), so running the script twice gives byte-identical files.

Training uses the `tokenizers` library with a Metaspace pre-tokenizer that
splits before every "▁", so no learned piece ever spans a word boundary (like
Llama-2's pieces, and what lets hymeval cut long texts into words safely). The
written tokenizer.json then has Llama-2's normaliser (Prepend "▁", Replace " "
with "▁") and no pre-tokenizer, so it encodes the way Llama-2 does.

usage: python3 tools/make_tokenizer.py [--out DIR]   (default: models/tokenizer)

The trained default model's tokenizer (tools/train/README.md) is made by the
same code from other text: --corpus FILE (one JSON string per line, e.g. from
tools/train/data.py --text-only), --vocab-size N and --split-digits (digits
never merge, as in Llama-2, so every number is one token per digit).
"""
import argparse
import json
import os
import random
import sys

VOCAB_SIZE = 1024
SEED = 20241124
N_LINES = 40000
SPACE = "\u2581"  # "▁", SentencePiece's visible space

SPECIALS = ["<unk>", "<s>", "</s>"]
BYTE_TOKENS = ["<0x%02X>" % b for b in range(256)]

# Own word lists: ordinary English words, grouped by the role they play in the
# sentence templates below.
NOUNS = """
time year people way day man woman child world life hand part place case week
company system program question work government number night point home water
room mother area money story fact month lot right study book eye job word
business issue side kind head house service friend father power hour game line
end member law car city community name president team minute idea kid body
information back parent face others level office door health person art war
history party result change morning reason research girl guy moment air teacher
force education river mountain garden kitchen window table chair letter market
village island forest engine signal bridge harbor valley station library museum
school street camera computer network memory record garden farmer doctor
student writer driver painter pilot baker sailor singer winter summer autumn
spring weather storm cloud stone metal paper glass bottle basket candle lamp
clock map ticket coin song poem picture model answer problem plan method
""".split()

VERBS = """
find take make know see give tell call keep leave feel bring begin hold write
stand hear lose meet include continue learn change lead understand watch follow
stop create speak read allow spend grow open walk offer remember consider appear
buy wait serve send expect build stay fall cut reach remain suggest raise pass
sell require report decide pull carry paint measure repair collect visit share
explain describe count cook clean check plant travel answer close move
""".split()

PAST = """
found took made knew saw gave told called kept left felt brought began held
wrote stood heard lost met included continued learned changed led understood
watched followed stopped created spoke read allowed spent grew opened walked
offered remembered considered appeared bought waited served sent expected built
stayed fell cut reached remained suggested raised passed sold required reported
decided pulled carried painted measured repaired collected visited shared
explained described counted cooked cleaned checked planted traveled answered
closed moved
""".split()

ADJECTIVES = """
good new first last long great little own other old right big high different
small large next early young important few public bad same able late hard
major better economic strong possible whole free military true federal
international full special easy clear recent certain personal open red
difficult available likely short single medical current wrong private past
foreign fine common poor natural significant similar hot dead central happy
serious ready simple left physical general environmental financial blue green
quiet bright heavy warm cold dark narrow wide careful gentle quick slow
""".split()

ADVERBS = """
also very often however too usually really early never always sometimes
together likely simply generally instead actually again rather almost
especially ever quickly probably already below directly therefore else
thus easily eventually exactly certainly normally currently extremely finally
""".split()

NAMES = """
Alice Bruno Clara Daniel Elena Felix Greta Hugo Irene Jonas Karla Leon Mira
Nora Oscar Paula Quinn Rosa Samuel Tara Umar Vera Walter Xenia Yusuf Zoe
Adam Beth Carlos Dina Emil Fiona
""".split()

PLACES = """
Arden Belmont Calder Dunmore Eastwick Fairhaven Glenrock Harlow Ivybridge
Kestrel Lindale Marlow Northfield Oakridge Pinehurst Redwater Stonebury
Thornton Upton Westmere
""".split()

UNITS = "km kg cm mm meters liters hours minutes seconds days percent points".split()
KEYS = """
name title city country status count total price date time author version
color size weight height width length score level mode owner region type
""".split()
STATUS = "ok pending done failed active closed open unknown ready".split()
MONTHS = """January February March April May June July August September October
November December""".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def number(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randrange(10))
    if kind == 1:
        return str(rng.randrange(10, 100))
    if kind == 2:
        return str(rng.randrange(1900, 2030))
    if kind == 3:
        return "%d.%02d" % (rng.randrange(1000), rng.randrange(100))
    if kind == 4:
        return "{:,}".format(rng.randrange(1000, 10000000))
    if kind == 5:
        return "%d%%" % rng.randrange(101)
    if kind == 6:
        return "%02d:%02d" % (rng.randrange(24), rng.randrange(60))
    return str(rng.randrange(100, 100000))


def noun_phrase(rng):
    words = [rng.choice(["the", "a", "this", "that", "every", "one", "my", "our", "their"])]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    noun = rng.choice(NOUNS)
    if words[0] == "a" and (words[-1] if len(words) > 1 else noun)[0] in "aeiou":
        words[0] = "an"
    words.append(noun)
    return " ".join(words)


def sentence(rng):
    subject = rng.choice([noun_phrase(rng), rng.choice(NAMES), "she", "he", "they", "we", "I"])
    kind = rng.randrange(9)
    if kind == 0:
        s = "%s %s %s." % (subject, rng.choice(PAST), noun_phrase(rng))
    elif kind == 1:
        s = "%s %s %s in %s." % (subject, rng.choice(ADVERBS), rng.choice(PAST), rng.choice(PLACES))
    elif kind == 2:
        s = "Did %s %s %s?" % (subject, rng.choice(VERBS), noun_phrase(rng))
    elif kind == 3:
        s = "%s said that %s was %s." % (rng.choice(NAMES), noun_phrase(rng), rng.choice(ADJECTIVES))
    elif kind == 4:
        s = "On %s, %s %s %s %s." % (rng.choice(DAYS), subject, rng.choice(PAST), number(rng), rng.choice(UNITS))
    elif kind == 5:
        s = "In %s %s, %s %s %s to %s." % (rng.choice(MONTHS), rng.randrange(1950, 2030), subject,
                                         rng.choice(PAST), noun_phrase(rng), rng.choice(PLACES))
    elif kind == 6:
        s = "%s will %s %s, and %s will %s it %s." % (subject, rng.choice(VERBS), noun_phrase(rng),
                                                      rng.choice(NAMES), rng.choice(VERBS), rng.choice(ADVERBS))
    elif kind == 7:
        s = "\"%s %s,\" %s %s." % (rng.choice(["Please", "Now", "Then", "Always"]), rng.choice(VERBS),
                                   rng.choice(NAMES), rng.choice(["said", "asked", "wrote", "replied"]))
    else:
        s = "The %s (%s) %s about %s %s." % (rng.choice(NOUNS), number(rng), rng.choice(PAST), number(rng),
                                              rng.choice(UNITS))
    return s[0].upper() + s[1:]


def key_value(rng):
    key = rng.choice(KEYS)
    value = rng.choice([number(rng), rng.choice(NAMES), rng.choice(PLACES), rng.choice(STATUS),
                        noun_phrase(rng)])
    return "%s: %s" % (key, value)


def make_lines(seed, count):
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        r = rng.random()
        if r < 0.55:
            lines.append(" ".join(sentence(rng) for _ in range(rng.randrange(1, 4))))
        elif r < 0.8:
            lines.append(key_value(rng))
        elif r < 0.9:
            lines.append("%d. %s" % (rng.randrange(1, 20), sentence(rng)))
        else:
            lines.append(", ".join(number(rng) for _ in range(rng.randrange(2, 8))))
    return lines


def train(lines, split_digits=False):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    # Split before every "▁" only while training, so pieces never cross words.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="never", split=True)
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence([tok.pre_tokenizer, pre_tokenizers.Digits(individual_digits=True)])
    # Every printable ASCII character gets a piece even if the text lacks it.
    alphabet = [chr(c) for c in range(0x21, 0x7F)] + [SPACE]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIALS + BYTE_TOKENS,
                                  initial_alphabet=alphabet, min_frequency=2, show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], model["merges"]


def merge_string(merge):
    # Llama-2's file writes each merge as "left right"; newer library versions
    # write ["left", "right"]. Both are read; we write the Llama-2 form.
    left, right = merge.split(" ") if isinstance(merge, str) else merge
    if " " in left or " " in right:
        sys.exit("a learned piece contains a space: %r %r" % (left, right))
    return "%s %s" % (left, right)


def llama_layout(vocab, merges):
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(SPECIALS)]
    template_single = [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    template_pair = template_single + [{"SpecialToken": {"id": "<s>", "type_id": 1}},
                                       {"Sequence": {"id": "B", "type_id": 1}}]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": template_single, "pair": template_pair,
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
                  "merges": [merge_string(m) for m in merges]},
    }


CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
    "clean_up_tokenization_spaces": False,
    "legacy": True,
    "model_max_length": 8192,
    "tokenizer_class": "LlamaTokenizer",
}


def check(layout):
    vocab = layout["model"]["vocab"]
    ids = sorted(vocab.values())
    if ids != list(range(VOCAB_SIZE)):
        sys.exit("vocab ids are not 0..%d (got %d entries)" % (VOCAB_SIZE - 1, len(ids)))
    for i, s in enumerate(SPECIALS + BYTE_TOKENS):
        if vocab.get(s) != i:
            sys.exit("%s should have id %d" % (s, i))
    for piece in vocab:
        # No "▁" after another character inside a piece (see the docstring).
        for k in range(1, len(piece)):
            if piece[k] == SPACE and piece[k - 1] != SPACE:
                sys.exit("piece %r crosses a word boundary" % piece)


def verify(out_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    text = "Hello world: the 3 quick foxes, 42% of 1,000.\nÜber 日本 😀"
    enc = tok.encode(text)
    if enc.ids[0] != 1 or tok.get_vocab_size() != VOCAB_SIZE:
        sys.exit("the written tokenizer does not load as expected")
    if tok.decode(enc.ids, skip_special_tokens=True) != text:
        sys.exit("round trip failed: %r" % tok.decode(enc.ids, skip_special_tokens=True))
    return enc


def main():
    global VOCAB_SIZE
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(root, "models", "tokenizer"))
    ap.add_argument("--corpus", help="train on these texts (one JSON string per line) instead of the built-in ones")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--split-digits", action="store_true")
    args = ap.parse_args()
    VOCAB_SIZE = args.vocab_size

    if args.corpus:
        with open(args.corpus, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
    else:
        lines = make_lines(SEED, N_LINES)
    vocab, merges = train(lines, args.split_digits)
    layout = llama_layout(vocab, merges)
    check(layout)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(layout, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    enc = verify(args.out)
    print("wrote %s: %d tokens, %d merges; sample: %s" % (args.out, VOCAB_SIZE, len(merges), enc.tokens[:12]))


if __name__ == "__main__":
    main()
