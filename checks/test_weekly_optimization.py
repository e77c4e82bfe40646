"""Manual Weekly 3: System Optimization: the memory and disk I/O readings the guide shows the operator.

The guide's `free -h`, `grep -E "(MemTotal|MemFree|MemAvailable|Cached)" /proc/meminfo` and
`iostat -x 1 5`: read on the box by its own python3 (probes/remote/weeklyscan.py), the disk being the one that
holds `[weekly_review] io_path` (the application), sampled over `io_sample_seconds`. These are figures for
a human to judge (the guide has no threshold; the daily RES-002 watches memory against one); each check
asserts only that its reading can be trusted. `./scripts/system-optimizer.sh` is the operator's, not run.
"""

import pytest

pytestmark = pytest.mark.weekly


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}"


@pytest.mark.check("OPT-001", severity="info", why="how much memory is free, available and cache shows whether the "
                                                    "box has room to grow or is about to swap")
def test_memory_figures(system_readings, record_property):
    memory = system_readings.memory()
    total = memory["MemTotal"]
    record_property("memory_total_mb", f"{total / 1024:.0f}")
    if total > 0:
        record_property("memory_available_percent", _percent(memory["MemAvailable"], total))
        record_property("memory_free_percent", _percent(memory["MemFree"], total))
        record_property("memory_cached_percent", _percent(memory["Cached"], total))
    assert total > 0 and all(0 <= memory[key] <= total for key in ("MemFree", "MemAvailable", "Cached")), (
        f"/proc/meminfo does not add up: {memory} (kB); these figures cannot be trusted")


def _ms(value) -> str:
    return "no I/O" if value is None else f"{value:.2f}"


@pytest.mark.check("OPT-002", severity="info", why="the application disk's load and latency show whether I/O "
                                                    "slows the agent down")
def test_disk_io_figures(system_readings, settings, record_property):
    sample = system_readings.disk_io()
    if "no_disk" in sample:
        pytest.skip(f"not applicable here: {sample['no_disk']}")
    io = sample["figures"]
    record_property("io_device", f"{sample['name']} ({sample['device']}) over {sample['seconds']:.1f} s")
    record_property("io_reads_per_s", f"{io['r_per_s']:.2f}")
    record_property("io_writes_per_s", f"{io['w_per_s']:.2f}")
    record_property("io_read_kb_per_s", f"{io['rkb_per_s']:.1f}")
    record_property("io_write_kb_per_s", f"{io['wkb_per_s']:.1f}")
    record_property("io_await_ms", _ms(io["await_ms"]))
    record_property("io_util_percent", f"{io['util_percent']:.1f}")
    # Every counter only grows, but the 9th, the I/Os in flight at the moment of reading.
    wound_back = [index + 1 for index, (then, now) in enumerate(zip(sample["before"], sample["after"], strict=True))
                  if index != 8 and now < then]
    assert sample["seconds"] > 0 and not wound_back, (
        f"/proc/diskstats of {sample['name']} went backwards (fields {wound_back}) within the "
        f"{settings.weekly_review.io_sample_seconds:g} s sample: the counters were reset, these figures cannot be "
        "trusted")
