#!/usr/bin/env python3
"""Writes a C source defining `const unsigned char NAME[]` (NUL-terminated)
and `NAME_len` from a file, so the binary carries it (build step)."""
import sys

def main():
    src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(src, "rb").read()
    with open(out, "w") as f:
        f.write("/* generated from %s by scripts/embed_file.py */\n" % src.split("/")[-1])
        f.write("const unsigned char %s[] = {\n" % name)
        for i in range(0, len(data), 20):
            f.write("  " + ",".join(str(b) for b in data[i:i + 20]) + ",\n")
        f.write("  0};\n")
        f.write("const unsigned long %s_len = %d;\n" % (name, len(data)))

if __name__ == "__main__":
    main()
