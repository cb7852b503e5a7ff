#!/usr/bin/env python3
"""synth_docs.py: procedural documents for training, in the dataset formats
hymeval's loaders read, so that hymeval's own task builders turn them into
prompts exactly as they build the evaluation prompts.

    swde.jsonl     Based-format records (web pages of fields), key -> value
    fda.jsonl      Based-format records (510(k)-summary-like documents)
    squad_c.jsonl  Based-format SQuAD-Completion: passage + statement -> value
    squad_v2.json  SQuAD v2.0 JSON (passages, questions, answers) for RULER QA

Everything (names, places, facts) is drawn from syllables and short word lists
here, from a seed, so nothing is copied from the evaluation samples and the
same seed writes the same files.

usage: synth_docs.py --out DIR [--seed S] [--records N] [--passages N]
"""
import argparse
import json
import os
import random

ONSETS = "b br c ch d dr f g gr h j k kl l m n p pr r s st t tr v w z".split()
VOWELS = "a e i o u a e o ei ou".split()
CODAS = "n r l s m k th nd rk ll st".split() + [""] * 4

GENRES = "drama comedy thriller documentary western romance mystery musical".split()
MATERIALS = "granite oak larch steel brick limestone copper marble".split()
COLOURS = "red grey green blue white amber black golden".split()
ANIMALS = "heron otter lynx falcon salmon badger crane beetle".split()
CROPS = "barley rye apples hops flax potatoes plums oats".split()
JOBS = "surveyor engineer architect botanist cartographer merchant painter physician".split()
PANELS = "dental cardiovascular radiology orthopedic neurology general hospital ophthalmic".split()
DEVICES = "Curing Light|Infusion Pump|Bone Screw|Pulse Oximeter|Surgical Drape|Catheter Guide|Hearing Aid|Wound Dressing".split("|")


def word(rng, syllables=None):
    n = syllables or rng.choice([2, 2, 3])
    w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(n))
    return w.capitalize()


def person(rng):
    return "%s %s" % (word(rng, rng.choice([1, 2])), word(rng))


def place(rng):
    return word(rng) + rng.choice(["", "", "holm", "ford", "ia", "by", "stad", "wick"])


def year(rng):
    return str(rng.randrange(1600, 2024))


# Entity kinds for passages: (name maker, [(fact sentence, statement, question, value maker)]).
# "{n}" is the entity's name, "{v}" the value.
ENTITIES = {
    "lake": (lambda r: "Lake " + place(r), [
        ("It was first mapped in {y} by the {j} {v}.", "{n} was first mapped by the {j}", "Who first mapped {n}?", "person"),
        ("The lake is fed by the {v} River.", "{n} is fed by the", "Which river feeds {n}?", "river"),
        ("Its shores are home to the rare {c} {v}.", "The shores of {n} are home to the rare {c}", "Which animal lives on the shores of {n}?", "animal"),
        ("The lake lies in the province of {v}.", "{n} lies in the province of", "In which province is {n}?", "place"),
    ]),
    "bridge": (lambda r: "the " + place(r) + " Bridge", [
        ("It was built in {v} from {m}.", "{N} was built in the year", "When was {n} built?", "year"),
        ("The {j} {v} designed it.", "{N} was designed by the {j}", "Who designed {n}?", "person"),
        ("It crosses the {v} River.", "{N} crosses the", "Which river does {n} cross?", "river"),
        ("Its main span is {v} metres long.", "The main span of {n} is", "How long is the main span of {n}?", "number"),
    ]),
    "town": (lambda r: place(r), [
        ("The town was founded in {v}.", "{n} was founded in", "When was {n} founded?", "year"),
        ("Its farmers are known for growing {v}.", "The farmers of {n} are known for growing", "What do the farmers of {n} grow?", "crop"),
        ("The mayor of the town is {v}.", "The mayor of {n} is", "Who is the mayor of {n}?", "person"),
        ("It is named after the {j} {v}.", "{n} is named after the {j}", "Who is {n} named after?", "person"),
    ]),
    "ship": (lambda r: "the " + word(r), [
        ("The ship was launched in {v}.", "{N} was launched in", "When was {n} launched?", "year"),
        ("Its first captain was {v}.", "The first captain of {n} was", "Who was the first captain of {n}?", "person"),
        ("It sailed from the port of {v}.", "{N} sailed from the port of", "From which port did {n} sail?", "place"),
        ("Its hull is painted {v}.", "The hull of {n} is painted", "What colour is the hull of {n}?", "colour"),
    ]),
    "comet": (lambda r: "the comet " + word(r) + "-" + word(r, 2), [
        ("It was discovered in {v} at the {o} observatory.", "{N} was discovered in", "When was {n} discovered?", "year"),
        ("The astronomer {v} first described its orbit.", "The orbit of {n} was first described by the astronomer", "Who first described the orbit of {n}?", "person"),
        ("It returns every {v} years.", "{N} returns every", "How often does {n} return?", "number"),
    ]),
}


def value(rng, kind):
    return {
        "person": lambda: person(rng),
        "river": lambda: word(rng),
        "animal": lambda: rng.choice(ANIMALS),
        "place": lambda: place(rng),
        "year": lambda: year(rng),
        "number": lambda: str(rng.randrange(3, 900)),
        "crop": lambda: rng.choice(CROPS),
        "colour": lambda: rng.choice(COLOURS),
    }[kind]()


def passage(rng):
    """One passage about one entity: (title, text, [(statement, question, answer)])."""
    kind = rng.choice(sorted(ENTITIES))
    make_name, facts = ENTITIES[kind]
    name = make_name(rng)
    chosen = rng.sample(facts, rng.randrange(2, len(facts) + 1))
    fill = {"n": name, "N": name[0].upper() + name[1:], "j": rng.choice(JOBS), "c": rng.choice(COLOURS),
            "m": rng.choice(MATERIALS), "o": place(rng)}
    sentences = ["%s is a %s%s." % (fill["N"], kind, rng.choice(["", " in the north", " of some renown", " of the old coast"]))]
    qas = []
    for fact, statement, question, vkind in chosen:
        v = value(rng, vkind)
        sentences.append(fact.format(v=v, y=year(rng), **fill))
        qas.append((statement.format(**fill), question.format(**fill), v))
    return fill["N"], " ".join(sentences), qas


def squad_c(rng, n):
    out = []
    for i in range(n):
        title, context, qas = passage(rng)
        statement, question, answer = rng.choice(qas)
        out.append({"doc_id": i, "title": title, "context": context, "question": question,
                    "text": context + " " + statement, "value": answer})
    return out


def squad_v2(rng, n):
    data = []
    for i in range(n):
        title, context, qas = passage(rng)
        qs = []
        for k, (statement, question, answer) in enumerate(qas):
            qs.append({"id": "t%06d_%d" % (i, k), "question": question, "statement": statement,
                       "answers": [{"text": answer, "answer_start": context.find(answer)}], "is_impossible": False})
        data.append({"title": title, "paragraphs": [{"context": context, "qas": qs}]})
    return {"version": "v2.0", "data": data}


def swde(rng, n):
    """Web-page-like records: a title line, field lines, boilerplate; one line per asked key."""
    pages = []
    for i in range(n):
        kind = rng.choice(["movie", "book", "university", "restaurant"])
        if kind == "movie":
            title = "The %s %s" % (rng.choice(COLOURS).capitalize(), word(rng))
            fields = [("Title", "title", title), ("Director", "director", person(rng)),
                      ("Release year", "year", year(rng)), ("Genre", "genre", rng.choice(GENRES).capitalize())]
            tail = "User reviews: %.1f of 5 from %d ratings. Add to watch list." % (rng.uniform(1, 5), rng.randrange(5, 999))
        elif kind == "book":
            title = "%s of %s" % (rng.choice(["Letters", "Songs", "Maps", "Winters", "Stones"]), place(rng))
            fields = [("Title", "title", title), ("Author", "author", person(rng)),
                      ("Publisher", "publisher", word(rng) + " Press"), ("Published", "year", year(rng))]
            tail = "Paperback, %d pages. Free delivery on orders over 20." % rng.randrange(90, 900)
        elif kind == "university":
            title = "University of %s" % place(rng)
            fields = [("Name", "name", title), ("Type", "type", rng.choice(["Public", "Private"])),
                      ("Phone", "phone", "(%03d) %03d-%04d" % (rng.randrange(200, 999), rng.randrange(1000), rng.randrange(10000))),
                      ("City", "city", place(rng))]
            tail = "Admissions | Campus map | Contact us"
        else:
            title = "%s's %s" % (word(rng), rng.choice(["Kitchen", "Table", "Grill", "Bakery"]))
            fields = [("Name", "name", title), ("Cuisine", "cuisine", rng.choice(["Italian", "Thai", "Greek", "Local"])),
                      ("Chef", "chef", person(rng)), ("Opened", "year", year(rng))]
            tail = "Reservations recommended. Open daily from %d am." % rng.randrange(7, 12)
        rng.shuffle(fields)
        body = "%s | %s page\n%s\n%s\n" % (title, kind.capitalize(), "\n".join("%s: %s" % (f, v) for f, _, v in fields), tail)
        for _, key, v in rng.sample(fields, 2):
            pages.append({"doc_id": "%s-%05d-%s" % (kind, i, key), "file_name": "%s-%05d.htm" % (kind, i),
                          "key": key, "value": " " + v, "text": body + "\n" + key + ":"})
    return pages


def fda(rng, n):
    docs = []
    for i in range(n):
        fields = [("Submitter", "applicant", "%s %s" % (word(rng), rng.choice(["Instruments", "Medical", "Labs", "Devices"]))),
                  ("Device trade name", "device name", "%s %s" % (word(rng), rng.choice(DEVICES))),
                  ("Classification panel", "panel", rng.choice(PANELS)),
                  ("Date prepared", "date", "%s %d, %s" % (rng.choice(["March", "June", "October", "January"]), rng.randrange(1, 29), year(rng)))]
        rng.shuffle(fields)
        code = "K%06d" % rng.randrange(10 ** 6)
        body = "510(k) SUMMARY\n%s\nThe device is substantially equivalent.\n" % "\n".join("%s: %s" % (f, v) for f, _, v in fields)
        for _, key, v in rng.sample(fields, 2):
            docs.append({"doc_id": "%s-%s" % (code, key.replace(" ", "_")), "file_name": code + ".txt",
                         "key": key, "value": v, "text": body + key + ":"})
    return docs


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=5150)
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument("--passages", type=int, default=4000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    write_jsonl(os.path.join(a.out, "swde.jsonl"), swde(rng, a.records))
    write_jsonl(os.path.join(a.out, "fda.jsonl"), fda(rng, a.records // 2))
    write_jsonl(os.path.join(a.out, "squad_c.jsonl"), squad_c(rng, a.passages))
    with open(os.path.join(a.out, "squad_v2.json"), "w", encoding="utf-8") as f:
        json.dump(squad_v2(rng, a.passages), f, ensure_ascii=False)


if __name__ == "__main__":
    main()
