"""Threads for the local model: the smallest of cgroup quota, affinity and CPU count;
and the memory left, under a cgroup limit or not."""

import os

import pytest

from llmapp.cpus import (
    CpuBudget,
    available_cpus,
    available_memory_mb,
    cgroup_quota,
    default_threads,
)
from llmapp.providers.xllama import pool_plan


def write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_cgroup_v2_quota_caps_the_threads(tmp_path):
    write(tmp_path, "cpu.max", "150000 100000\n")  # 1.5 CPUs: two threads, rounded up
    assert cgroup_quota(tmp_path) == (2, "cgroup v2 quota (cpu.max: 150000 100000)")
    write(tmp_path, "cpu.max", "50000 100000\n")  # half a CPU still gets one thread
    budget = available_cpus(tmp_path)
    assert budget.cores == 1 and "cgroup v2" in budget.source


def test_no_cgroup_quota_means_the_affinity_or_cpu_count(tmp_path):
    write(tmp_path, "cpu.max", "max 100000\n")
    assert cgroup_quota(tmp_path) is None
    budget = available_cpus(tmp_path)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    assert budget.cores == expected


def test_a_cgroup_v1_quota_is_read_too(tmp_path):
    write(tmp_path, "cpu/cpu.cfs_quota_us", "100000\n")
    write(tmp_path, "cpu/cpu.cfs_period_us", "100000\n")
    assert cgroup_quota(tmp_path) == (1, "cgroup v1 quota (cfs_quota_us 100000 / "
                                         "cfs_period_us 100000)")
    write(tmp_path, "cpu/cpu.cfs_quota_us", "-1\n")  # v1's "no limit"
    assert cgroup_quota(tmp_path) is None


@pytest.mark.parametrize("text", ["", "garbage", "0 100000", "100000"])
def test_unreadable_quotas_are_ignored(tmp_path, text):
    write(tmp_path, "cpu.max", text)
    assert cgroup_quota(tmp_path) is None


def test_a_quota_larger_than_the_machine_does_not_raise_the_count(tmp_path):
    write(tmp_path, "cpu.max", "6400000 100000\n")  # 64 CPUs allowed
    assert available_cpus(tmp_path).cores <= (os.cpu_count() or 1)


def test_the_setting_wins_over_the_machine(tmp_path):
    write(tmp_path, "cpu.max", "100000 100000\n")
    assert default_threads(3, tmp_path).cores == 3
    assert default_threads(3, tmp_path).batch_cores == 3
    assert default_threads(0, tmp_path).cores == 1


def test_one_core_is_left_to_the_app(tmp_path):
    write(tmp_path, "cpu.max", "200000 100000\n")
    cores = available_cpus(tmp_path).cores
    budget = default_threads(0, tmp_path)
    if cores == 1:  # a one-CPU machine keeps its one thread
        assert budget.cores == 1
    else:
        assert cores == 2 and budget.cores == 1
        assert budget.source.endswith("less one core for the app")
    assert budget.batch_cores == cores  # prompts are processed on every core


MEMINFO = "MemTotal:       24000000 kB\nMemAvailable:   20480000 kB\n"  # 20,000 MB


def test_memory_left_under_a_cgroup_v2_limit(tmp_path):
    write(tmp_path, "meminfo", MEMINFO)
    write(tmp_path, "cg/memory.max", str(690 * 2**20))  # Community Cloud's smallest box
    write(tmp_path, "cg/memory.current", str(600 * 2**20))
    assert available_memory_mb(tmp_path / "cg", tmp_path / "meminfo") == pytest.approx(90)


def test_memory_left_under_a_cgroup_v1_limit(tmp_path):
    write(tmp_path, "meminfo", MEMINFO)
    write(tmp_path, "cg/memory/memory.limit_in_bytes", str(2700 * 2**20))
    write(tmp_path, "cg/memory/memory.usage_in_bytes", str(700 * 2**20))
    assert available_memory_mb(tmp_path / "cg", tmp_path / "meminfo") == pytest.approx(2000)


@pytest.mark.parametrize("files", [{"memory.max": "max", "memory.current": "1"},
                                   {"memory/memory.limit_in_bytes": str(2**63 - 4096),
                                    "memory/memory.usage_in_bytes": "1"}, {}])
def test_no_memory_limit_means_memavailable(tmp_path, files):
    write(tmp_path, "meminfo", MEMINFO)
    for name, text in files.items():
        write(tmp_path, f"cg/{name}", text)
    assert available_memory_mb(tmp_path / "cg", tmp_path / "meminfo") == pytest.approx(20000)
    assert available_memory_mb(tmp_path / "cg", tmp_path / "nothing") == float("inf")


@pytest.mark.parametrize(("cores", "threads", "plan"), [
    (2, 1, (2, 1)),   # the default on 2 cores: one 1-thread, 1-slot server per core
    (1, 1, (1, 2)),   # one core: one server, two slots taking turns
    (8, 7, (1, 2)),   # the default on 8 cores: one 7-thread server
    (8, 2, (4, 1)),
])
def test_the_pool_plan_gives_each_server_its_cores(cores, threads, plan):
    assert pool_plan(CpuBudget(threads, "test"), cores=cores) == plan
