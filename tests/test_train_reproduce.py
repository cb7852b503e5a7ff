#!/usr/bin/env python3
"""tools/train/reproduce.sh: the shipped model's lineage, as a plan.

Runs the script with PLAN=1 (it prints its commands and runs none) and
checks them:
- the phases train in the recorded order, each from the previous one's
  export (the first from random weights), for a fixed --steps, never
  stopped by the clock;
- every train.py option exists in train.py's parser, every make_default.sh
  setting is one it reads;
- every --data file and mix part is made by an earlier command;
- FIRST / LAST run a part, from the previous phase's export in WORK or from
  INIT; an unknown phase is refused with exit status 2 and its name.
Needs neither PyTorch nor a GPU.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")
SCRIPT = os.path.join(ROOT, "tools", "train", "reproduce.sh")
ORDER = ["1", "2", "3", "4", "11a", "11b", "12", "13", "15"]
MAKE_DEFAULT_VARS = {"DATA_ONLY", "SCALE", "LENGTHS", "SEED", "ONLY", "FAR"}

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))


def plan(work, *args, env=None):
    e = dict(os.environ, PLAN="1", **(env or {}))
    p = subprocess.run(["bash", SCRIPT, work] + list(args), capture_output=True, text=True, env=e)
    cmds = [shlex.split(line[2:]) for line in p.stdout.splitlines() if line.startswith("+ ")]
    return p, cmds


def options(argv):
    """--name value pairs of a train.py command line."""
    out, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--"):
            out[argv[i][2:]] = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else ""
        i += 1
    return out


def main():
    with open(os.path.join(ROOT, "tools", "train", "train.py")) as f:
        declared = set(re.findall(r'add_argument\("--([a-z-]+)"', f.read()))
    work = tempfile.mkdtemp(prefix="reproduce-plan-")
    p, cmds = plan(work)
    check("PLAN=1 exits 0", p.returncode == 0, p.stderr.strip())
    check("nothing was made under WORK", os.listdir(work) == [], str(os.listdir(work)))

    made = set()  # files earlier commands produce
    trains = []
    for argv in cmds:
        if argv[:2] == ["python3", "tools/train/train.py"]:
            o = options(argv[2:])
            trains.append(o)
            bad = sorted(k for k in o if k not in declared)
            check("train.py knows every option of phase %s" % o.get("out", "?"), not bad, str(bad))
            check("%s: its data is made first" % o.get("out"), o.get("data") in made, o.get("data", ""))
            made.add(os.path.join(o.get("out", ""), "model"))
        elif argv and argv[0] == "env" and "tools/train/make_default.sh" in argv:
            names = {a.split("=", 1)[0] for a in argv[1:] if "=" in a and not a.startswith("/")}
            check("make_default.sh reads every setting of %s" % argv[-1], names <= MAKE_DEFAULT_VARS,
                  str(sorted(names - MAKE_DEFAULT_VARS)))
            check("%s is data only" % argv[-1], "DATA_ONLY=1" in argv)
            made.add(os.path.join(argv[-1], "train.npz"))
        elif argv[:2] == ["python3", "tools/train/mix.py"]:
            parts = [a.split(":")[0] for a in argv[2:argv.index("--out")]]
            missing = [q for q in parts if q not in made]
            check("mix %s: every part is made first" % argv[-1], not missing, str(missing))
            made.add(argv[-1])

    outs = [os.path.basename(t.get("out", "")) for t in trains]
    check("the phases in the recorded order", outs == ORDER, str(outs))
    for k, t in enumerate(trains):
        want = None if k == 0 else os.path.join(work, ORDER[k - 1], "model")
        check("phase %s starts from %s" % (outs[k], want or "random weights"), t.get("init-from") == want,
              str(t.get("init-from")))
        steps = t.get("steps", "")
        check("phase %s trains a fixed number of steps" % outs[k], steps.isdigit() and int(steps) > 0, steps)
        check("phase %s is not stopped by the clock" % outs[k], "time-limit" not in t and "schedule-seconds" not in t)

    p, cmds = plan(work, "13", "15")
    t = [options(a[2:]) for a in cmds if a[:2] == ["python3", "tools/train/train.py"]]
    check("13..15: two phases, 13 from WORK/12", [os.path.basename(x["out"]) for x in t] == ["13", "15"] and
          t[0].get("init-from") == os.path.join(work, "12", "model"), str(t))
    p, cmds = plan(work, "15", "15", env={"INIT": "models/default"})
    t = [options(a[2:]) for a in cmds if a[:2] == ["python3", "tools/train/train.py"]]
    check("15 alone from INIT", len(t) == 1 and t[0].get("init-from") == "models/default", str(t))
    p, _ = plan(work, "14")
    check("an unknown phase is refused", p.returncode == 2 and "'14'" in p.stderr, p.stderr.strip())

    failed = results.count(False)
    print("%d checks, %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
