#!/usr/bin/env python3
"""Turns run.sh's results.jsonl into the JSON array and the markdown table.

usage: report.py RESULTS.jsonl ROUNDS QUICK SIZE_MIB NFILES RAND_OPS RAND_SLICES UNLINK_SLICES DROP_OK SETTLE_S SOURCE OUT.json OUT.md

Every row of the JSON array is one (workload, system) with the median of
its rounds' values under the unit's name (MiB_per_s or ops_per_s) and every
round's value in "rounds". Rows of the VexFS systems also carry
ratio_vs_passthrough_ll and ratio_vs_host: the median over the rounds of
VexFS's throughput divided by the other system's in the same round, so 1.0
is parity and higher is better for VexFS, with every round's ratio in
ratios_vs_passthrough_ll / ratios_vs_host. A ratio is null when the other
system was not measured. Rows PHASE_at_pt_n (run.sh, when passthrough_ll
ran fewer files than asked) hold a VexFS system's metadata phase on
passthrough_ll's file count and are divided by passthrough_ll's PHASE row.
"""
import json
import statistics
import sys

VEXFS_SYSTEMS = ("vexfs", "vexfs_default")
COLUMNS = ("vexfs", "vexfs_default", "passthrough_ll", "host")
LABEL = {
    "vexfs": "VexFS (default_permissions)",
    "vexfs_default": "VexFS (VexFS checks)",
    "passthrough_ll": "passthrough_ll",
    "host": "host",
}
WORKLOADS = {
    "seq_write": "sequential write 1 MiB blocks + fsync",
    "seq_read": "sequential read 1 MiB blocks, cold",
    "rand_read_4k": "4 KiB random read, O_DIRECT",
    "rand_write_4k": "4 KiB random write, buffered + fsync",
    "create": "create empty files",
    "stat": "stat, cold",
    "readdir": "readdir entries, cold",
    "unlink": "unlink, cold",
}
# run.sh's PHASE_at_pt_n rows: a VexFS system running a metadata phase on
# as many files as passthrough_ll could (RLIMIT_NOFILE), compared with
# passthrough_ll's PHASE row only.
AT_PT_N = "_at_pt_n"
for _w in ("create", "stat", "readdir", "unlink"):
    WORKLOADS[_w + AT_PT_N] = WORKLOADS[_w] + ", on passthrough_ll's file count"


def other_key(w, other):
    """The (workload, system) a VexFS row of workload w is divided by."""
    if w.endswith(AT_PT_N):
        return (w[: -len(AT_PT_N)], other) if other == "passthrough_ll" else None
    return (w, other)


def median(xs):
    return statistics.median(xs) if xs else None


def main(argv):
    (results, nrounds, quick, size_mib, nfiles, rand_ops, rand_slices, unlink_slices, drop_ok, settle_s,
     source, out_json, out_md) = argv[1:14]
    rows = [json.loads(line) for line in open(results) if line.strip()]
    # per_round[(workload, system)] = {round: value}
    per_round = {}
    for r in rows:
        per_round.setdefault((r["workload"], r["system"]), {})[r.get("round", 1)] = r["value"]
    value = {k: median(list(v.values())) for k, v in per_round.items()}
    units = {r["workload"]: r["unit"] for r in rows}
    systems = [c for c in COLUMNS if any(r["system"] == c for r in rows)]
    workloads = [w for w in WORKLOADS if w in units]
    files = {(r["workload"], r["system"]): r.get("files") for r in rows}

    def ratios(w, s, other):
        """VexFS over `other` in every round both were measured, in round order."""
        key = other_key(w, other)
        a, b = per_round.get((w, s), {}), per_round.get(key, {}) if key else {}
        return [a[k] / b[k] for k in sorted(a) if k in b and b[k]]

    out = []
    for w in workloads:
        for s in systems:
            v = value.get((w, s))
            if v is None:
                continue
            row = {"workload": w, "system": s, units[w]: round(v, 1),
                   "rounds": [round(per_round[(w, s)][k], 1) for k in sorted(per_round[(w, s)])]}
            if files.get((w, s)) is not None:
                row["files"] = files[(w, s)]
            if s in VEXFS_SYSTEMS:
                for other in ("passthrough_ll", "host"):
                    rs = ratios(w, s, other)
                    row[f"ratio_vs_{other}"] = round(median(rs), 3) if rs else None
                    row[f"ratios_vs_{other}"] = [round(x, 3) for x in rs]
            out.append(row)
    with open(out_json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    head = ["workload", "unit"] + [LABEL[s] for s in systems]
    for s in systems:
        if s in VEXFS_SYSTEMS:
            tag = "VexFS" if s == "vexfs" else "VexFS-checks"
            if "passthrough_ll" in systems:
                head.append(f"{tag}/passthrough_ll")
            if "host" in systems:
                head.append(f"{tag}/host")
    lines = [
        f"{'Quick' if quick == '1' else 'Full'} run: {size_mib} MiB file, "
        f"{rand_ops} random 4 KiB ops (the reads in {rand_slices} slice(s), the systems taking turns), "
        f"{nfiles} files (unlinked in {unlink_slices} slice(s), the systems taking turns); drop_caches "
        f"{'before every measurement' if drop_ok == '1' else 'NOT available: reads may be cached'}, "
        f"then {settle_s} s of settling. {nrounds} round(s), the systems' order rotated "
        "every round (round r starts at the r-th system); values are medians over the rounds, ratios the median of the "
        "per-round ratios with their range in brackets.",
        f"VexFS built from {source}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|",
    ]
    notes = set()
    for w in workloads:
        cells = [f"{w} ({WORKLOADS[w]})", units[w].replace("_per_s", "/s")]
        for s in systems:
            v = value.get((w, s))
            cell = "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
            n = files.get((w, s))
            if n is not None and str(n) != nfiles:
                cell += f" ({n} files)"
                if not w.endswith(AT_PT_N):
                    notes.add(s)
            cells.append(cell)
        for s in systems:
            if s in VEXFS_SYSTEMS:
                for other in ("passthrough_ll", "host"):
                    if other in systems:
                        rs = ratios(w, s, other)
                        if not rs:
                            cells.append("-")
                        elif len(rs) == 1:
                            cells.append(f"{rs[0]:.2f}")
                        else:
                            cells.append(f"{median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})")
        lines.append("| " + " | ".join(cells) + " |")
    for s in sorted(notes):
        lines.append("")
        lines.append(f"{LABEL[s]} ran the metadata workloads on fewer files: its fd per "
                     "inode hits RLIMIT_NOFILE, whose hard limit could not be raised.")
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv)
