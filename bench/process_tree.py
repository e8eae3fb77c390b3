"""Memory of a process and everything it started (JVMs, Spark's Python workers)."""

from __future__ import annotations

import os


def tree_memory(pid: int, pss: bool = True) -> tuple[int, int]:
    """(RSS sum, PSS sum) of ``pid`` and all its descendants, in bytes.

    The RSS sum counts pages shared between processes (forked pyspark.daemon
    workers) more than once; PSS splits them, so it is the tree's real footprint.
    PSS reads every process's page map (``smaps``), which holds the memory map lock
    against the child's own mmap and munmap calls: ``pss=False`` reads RSS only (0
    for PSS). psutil when installed, else /proc scanning (RSS only).
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the venv
        rss = _proc_tree_rss(pid)
        return rss, rss
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    rss = pss_sum = 0
    for p in procs:
        try:
            full = p.memory_full_info() if pss else p.memory_info()
            rss += full.rss
            pss_sum += getattr(full, "pss", full.rss) if pss else 0
        except psutil.Error:
            pass
    return rss, pss_sum


def _proc_tree_rss(pid: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(p, 0) for p in tree)
