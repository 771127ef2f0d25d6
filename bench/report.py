#!/usr/bin/env python3
"""Formats bench/run.sh samples as a markdown report: medians, ratios, targets.

    bench/report.py SAMPLES.tsv META.json

SAMPLES.tsv: metric, rep, value, load average (1 min) at the end of the sample.
"""

import json
import statistics
import sys
from collections import defaultdict

TARGETS = {
    "initial_ratio": 1.3,  # ours / pull-local --untrusted
    "incremental_s": 0.20,
    "noop_s": 0.10,
    "rss_mb": 150,
}


def main():
    samples = defaultdict(list)
    loads = []
    with open(sys.argv[1]) as f:
        for line in f:
            metric, _rep, value, load = line.rstrip("\n").split("\t")
            samples[metric].append(float(value))
            if load != "-":
                loads.append(float(load))
    meta = json.load(open(sys.argv[2]))

    def med(m):
        return statistics.median(samples[m]) if samples.get(m) else None

    def cell(m):
        v = samples.get(m)
        if not v:
            return "n/a"
        if len(v) == 1:
            return f"{v[0]:.3f} s"
        return f"{statistics.median(v):.3f} s ({min(v):.3f}-{max(v):.3f})"

    def ratio(a, b):
        return f"{a / b:.2f}x" if a is not None and b else "n/a"

    def yes(ok):
        return "**met**" if ok else "**NOT met**"

    tree = meta["tree"]
    print(f"### Preset `{meta['preset']}` (seed {meta['seed']}): {tree['files']} files, "
          f"{tree['bytes'] / 1e6:.0f} MB; {meta['reps']} repetitions\n")
    print(f"Binaries: release build of `{meta.get('source', 'unknown')}`.\n")
    print(f"Initial push: {meta['initial_objects']} objects, {meta['initial_kb'] / 1024:.0f} MiB "
          f"in the archive repo. Increment: {len(meta['increment']['changed'])} changed, "
          f"{len(meta['increment']['added'])} added, {len(meta['increment']['deleted'])} deleted files.\n")
    print(f"Machine: {meta['nproc']} x {meta['cpu']}, {meta['mem_kb'] / 1048576:.1f} GiB, "
          f"kernel {meta['kernel']}, libostree {meta['ostree']}; load average at start "
          f"{meta['load_start']}, at end {meta['load_end']}"
          + (f", 1-min load during samples {min(loads):.2f}-{max(loads):.2f}" if loads else "") + ".\n")
    print("Times: median (min-max) over the repetitions, wall clock of the whole client command.\n")
    print("| Push | ours (`ostree-push`, native) | `ostree pull-local --untrusted` | ours / pull-local "
          "| Python ostree-push 1.2.0 | Python / ours | target | |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    oi, pi, yi = med("ours_initial"), med("pull_initial"), med("py_initial")
    print(f"| initial | {cell('ours_initial')} | {cell('pull_initial')} | {ratio(oi, pi)} | "
          f"{cell('py_initial')} | {ratio(yi, oi)} | <= {TARGETS['initial_ratio']} x pull-local | "
          f"{yes(oi is not None and pi and oi / pi <= TARGETS['initial_ratio'])} |")
    oc, pc, yc = med("ours_incremental"), med("pull_incremental"), med("py_incremental")
    print(f"| incremental | {cell('ours_incremental')} | {cell('pull_incremental')} | {ratio(oc, pc)} | "
          f"{cell('py_incremental')} | {ratio(yc, oc)} | <= {TARGETS['incremental_s']:.2f} s | "
          f"{yes(oc is not None and oc <= TARGETS['incremental_s'])} |")
    ou, pu = med("ours_used"), med("pull_used")
    if ou is not None:
        print(f"| initial into a repo with other content | {cell('ours_used')} | {cell('pull_used')} | "
              f"{ratio(ou, pu)} | | | <= {TARGETS['initial_ratio']} x pull-local | "
              f"{yes(pu and ou / pu <= TARGETS['initial_ratio'])} |")
    on, pn, yn = med("ours_noop"), med("pull_noop"), med("py_noop")
    print(f"| no-op | {cell('ours_noop')} | {cell('pull_noop')} | {ratio(on, pn)} | "
          f"{cell('py_noop')} | {ratio(yn, on)} | <= {TARGETS['noop_s']:.2f} s | "
          f"{yes(on is not None and on <= TARGETS['noop_s'])} |")
    pushers = meta["pushers"]
    oks = [int(v) for v in samples.get("load_ok", [])]
    all_ok = bool(oks) and all(o == pushers for o in oks)
    print(f"| {pushers} concurrent pushers (wall) | {cell('load_wall')}; succeeded: "
          f"{', '.join(f'{o}/{pushers}' for o in oks)} | | | | | all succeed | {yes(all_ok)} |")
    hwm = samples.get("load_hwm_kb", [])
    if hwm:
        peak = max(hwm) / 1024
        print(f"| gateway peak RSS during the load (VmHWM) | max {peak:.1f} MiB "
              f"(per rep: {', '.join(f'{h / 1024:.1f}' for h in hwm)}) | | | | | <= {TARGETS['rss_mb']} MB | "
              f"{yes(peak * 1.048576 <= TARGETS['rss_mb'])} |")
    print("\nCPU time (user + system, seconds, median): the client command with its children, and the "
          "gateway process during the same interval. Less sensitive to the machine's load than wall time.\n")
    print("| Push | ours: client | ours: gateway | ours: total | pull-local | Python: client (+ ssh) "
          "| Python: gateway | Python: total |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")

    def cpu(m):
        v = med(m)
        return f"{v:.2f}" if v is not None else "n/a"

    def tot(prefix, phase):
        a, b = med(f"{prefix}_{phase}_cpu_client"), med(f"{prefix}_{phase}_cpu_gateway")
        return f"{a + b:.2f}" if a is not None and b is not None else "n/a"

    for phase in ["initial", "used", "incremental", "noop"]:
        if med(f"ours_{phase}_cpu_gateway") is None:
            continue
        print(f"| {phase} | {cpu(f'ours_{phase}_cpu_client')} | {cpu(f'ours_{phase}_cpu_gateway')} | "
              f"{tot('ours', phase)} | {cpu(f'pull_{phase}_cpu_client')} | {cpu(f'py_{phase}_cpu_client')} | "
              f"{cpu(f'py_{phase}_cpu_gateway')} | {tot('py', phase)} |")
    if samples.get("load_wall_cpu_gateway"):
        print(f"\nGateway CPU during the {pushers} concurrent pushes: {cpu('load_wall_cpu_gateway')} s (median).")
    print()
    if samples.get("pullcopy_initial"):
        ci, cc = med("pullcopy_initial"), med("pullcopy_incremental")
        print(f"\nSecond baseline, `ostree pull-local --untrusted` from a copy of the source repo on "
              f"tmpfs (across filesystems it cannot hardlink, so it writes every object as a receive "
              f"must): initial {cell('pullcopy_initial')} (ours / it: {ratio(oi, ci)}), incremental "
              f"{cell('pullcopy_incremental')} (ours / it: {ratio(oc, cc)}); CPU "
              f"{cpu('pullcopy_initial_cpu_client')} s / {cpu('pullcopy_incremental_cpu_client')} s.")
    before = samples.get("hwm_before_load", [])
    print()
    if before:
        print(f"Gateway VmHWM just before each load (peak since start, or since the previous "
              f"load's reset: the single pushes of that repetition, and the previous load): "
              f"{', '.join(f'{b / 1024:.1f}' for b in before)} MiB; at the end of the run: "
              f"VmHWM {meta['vmhwm_end_kb'] / 1024:.1f} MiB (the last load), VmRSS "
              f"{meta['vmrss_end_kb'] / 1024:.1f} MiB.")
    if not meta["python"]:
        print("\nPython ostree-push 1.2.0 not installed (`make python-ostree-push`): skipped.")
    print("\nAll samples (seconds; `*_kb` in kB):\n")
    for m in sorted(samples):
        print(f"- `{m}`: {', '.join(f'{v:g}' for v in samples[m])}")


if __name__ == "__main__":
    main()
